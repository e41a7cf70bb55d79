import { createSubgraphServer, type GraphQLHttpServer, type RequestContext } from '@aiva/shared';
import { parse } from 'graphql';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  bearer,
  type GatewayUnderTest,
  graphql,
  silentLogger,
  startGatewayWith,
  tokens,
} from './helpers/echo-stack.js';

// Identical subgraph fetches of queries in flight at once share one request to the subgraph; anything that can
// change the answer (variables, the caller's token) keeps fetches apart, and mutations never share.

const gateTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
  type Item { tag: String! caller: String list: [String!]! }
  type Query { item(tag: String!): Item! }
  type Mutation { touch(tag: String!): Item! }
`);

/** Resolvers wait at the gate until the test opens it: concurrent requests are then surely in flight together. */
let waiting: Array<() => void> = [];
let calls: string[] = [];

function gated(kind: string, tag: string, ctx: RequestContext) {
  calls.push(`${kind}:${tag}`);
  return new Promise((resolve) => {
    waiting.push(() => resolve({ tag, caller: ctx.viewer?.userId ?? null, list: ['a', 'b'] }));
  });
}

let subgraph: GraphQLHttpServer;
let gateway: GatewayUnderTest;

beforeAll(async () => {
  subgraph = await createSubgraphServer<RequestContext>({
    name: 'gate',
    logger: silentLogger,
    typeDefs: gateTypeDefs,
    auth: tokens.verifier,
    resolvers: {
      Query: { item: (_: unknown, args: { tag: string }, ctx: RequestContext) => gated('q', args.tag, ctx) },
      Mutation: {
        touch: (_: unknown, args: { tag: string }, ctx: RequestContext) => gated('m', args.tag, ctx),
      },
    },
  });
  const url = `${await subgraph.listen({ port: 0, host: '127.0.0.1' })}/graphql`;
  gateway = await startGatewayWith({
    subgraphs: [{ name: 'gate', url, typeDefs: gateTypeDefs }],
    verifier: tokens.verifier,
    env: { RATE_LIMIT_MAX: '0' },
  });
});

afterEach(() => {
  for (const open of waiting) open();
  waiting = [];
  calls = [];
});

afterAll(async () => {
  await gateway?.app.close();
  await subgraph?.close();
});

/** Waits until `n` subgraph fetches joined one in flight (the gateway's own count of them). */
async function sharedFetchesReach(n: number): Promise<void> {
  for (;;) {
    const text = await (await fetch(`${gateway.base}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('aiva_gateway_subgraph_fetches_shared_total{'));
    if (Number(line?.split(' ').pop() ?? 0) >= n) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits until the subgraph has `n` resolvers at the gate, then opens it. */
async function openGateAt(n: number): Promise<void> {
  while (waiting.length < n) await new Promise((resolve) => setTimeout(resolve, 10));
  for (const open of waiting) open();
  waiting = [];
}

const ITEM = 'query Item($tag: String!) { item(tag: $tag) { tag caller list } }';
const ALICE = '01890000-0000-7000-8000-00000000a11c';
const BOB = '01890000-0000-7000-8000-000000000b0b';

describe('in-flight deduplication of subgraph fetches', () => {
  it('sends identical concurrent queries of one caller once, and answers each request', async () => {
    const auth = bearer(await tokens.token(ALICE));
    const requests = Array.from({ length: 4 }, () => graphql(gateway.url, ITEM, { tag: 'x' }, auth));
    await sharedFetchesReach(3);
    await openGateAt(1);
    const results = await Promise.all(requests);
    expect(calls).toEqual(['q:x']);
    for (const result of results) {
      expect(result.body).toEqual({ data: { item: { tag: 'x', caller: ALICE, list: ['a', 'b'] } } });
    }
  });

  it('keeps fetches of different callers or different variables apart', async () => {
    const alice = bearer(await tokens.token(ALICE));
    const bob = bearer(await tokens.token(BOB));
    const requests = [
      graphql(gateway.url, ITEM, { tag: 'x' }, alice),
      graphql(gateway.url, ITEM, { tag: 'x' }, bob),
      graphql(gateway.url, ITEM, { tag: 'y' }, alice),
    ];
    await openGateAt(3);
    const results = await Promise.all(requests);
    expect(calls.sort()).toEqual(['q:x', 'q:x', 'q:y']);
    expect(results.map((r) => r.body.data)).toEqual([
      { item: { tag: 'x', caller: ALICE, list: ['a', 'b'] } },
      { item: { tag: 'x', caller: BOB, list: ['a', 'b'] } },
      { item: { tag: 'y', caller: ALICE, list: ['a', 'b'] } },
    ]);
  });

  it('never shares a mutation', async () => {
    const auth = bearer(await tokens.token(ALICE));
    const mutation = 'mutation Touch($tag: String!) { touch(tag: $tag) { tag } }';
    const requests = [
      graphql(gateway.url, mutation, { tag: 'z' }, auth),
      graphql(gateway.url, mutation, { tag: 'z' }, auth),
    ];
    await openGateAt(2);
    const results = await Promise.all(requests);
    expect(calls).toEqual(['m:z', 'm:z']);
    for (const result of results) expect(result.body).toEqual({ data: { touch: { tag: 'z' } } });
  });
});
