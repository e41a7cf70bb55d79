import {
  createSubgraphServer,
  type GraphQLHttpServer,
  type RequestContext,
  type SubgraphServerOptions,
} from '@aiva/shared';
import type { GraphQLResult } from '@aiva/shared/testing';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GatewayUnderTest,
  graphql as postGraphql,
  silentLogger,
  startGatewayWith,
} from './helpers/echo-stack.js';

// Operation limits at their defaults (GRAPHQL_MAX_DEPTH 12, ALIASES 30, ROOT_FIELDS 20, MUTATIONS 5,
// DIRECTIVES 50, TOKENS 15,000, COST 20,000), through the gateway and against a subgraph called directly: each
// attack is refused before any resolver runs, and a query just within the limits, planned by the gateway into
// subgraph fetches (`_entities` included), still works.

/**
 * Asks as current clients do, preferring `application/graphql-response+json`: a refusal is then HTTP 400 (under
 * `application/json` it is 200 with the same errors, as any validation error; see the GraphQL-over-HTTP test).
 */
const graphql = <T = Record<string, unknown>>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
) => postGraphql<T>(url, query, variables, { accept: 'application/graphql-response+json' });

const treeTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
  type Node @key(fields: "id") {
    id: ID!
    name: String!
    children(first: Int = 1): [Node!]!
  }
  type Query { node: Node! nodes(first: Int = 10): [Node!]! }
  type Mutation { touch(label: String): Int! }
`);

/** A second subgraph adding a field to `Node`: the gateway fetches it with `_entities`. */
const scoresTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
  type Node @key(fields: "id") { id: ID! score: Int! }
`);

/** Resolver calls, across both subgraphs. */
let resolved = 0;
let touches = 0;
const nodeOf = (id: string) => ({ id, name: `node ${id}` });
const range = (count: number) => Array.from({ length: count }, (_, i) => i);

let tree: { server: GraphQLHttpServer; url: string };
let scores: { server: GraphQLHttpServer; url: string };
let gateway: GatewayUnderTest;

async function startSubgraph(
  name: string,
  typeDefs: ReturnType<typeof parse>,
  resolvers: SubgraphServerOptions<RequestContext>['resolvers'],
) {
  // No limits in the options: the subgraph takes them from the environment, as auth and users do.
  const server = await createSubgraphServer({ name, logger: silentLogger, typeDefs, resolvers });
  return { server, url: `${await server.listen({ port: 0, host: '127.0.0.1' })}/graphql` };
}

beforeAll(async () => {
  tree = await startSubgraph('tree', treeTypeDefs, {
    Query: {
      node: () => {
        resolved++;
        return nodeOf('n');
      },
      nodes: (_: unknown, { first }: { first: number }) => {
        resolved++;
        return range(first).map((i) => nodeOf(`n${i}`));
      },
    },
    Mutation: {
      touch: () => {
        resolved++;
        return ++touches;
      },
    },
    Node: {
      __resolveReference: ({ id }: { id: string }) => nodeOf(id),
      children: (parent: { id: string }, { first }: { first: number }) => {
        resolved++;
        return range(first).map((i) => nodeOf(`${parent.id}.${i}`));
      },
    },
  });
  scores = await startSubgraph('scores', scoresTypeDefs, {
    Node: {
      __resolveReference: ({ id }: { id: string }) => {
        resolved++;
        return { id, score: id.length };
      },
    },
  });
  gateway = await startGatewayWith({
    subgraphs: [
      { name: 'tree', url: tree.url, typeDefs: treeTypeDefs },
      { name: 'scores', url: scores.url, typeDefs: scoresTypeDefs },
    ],
  });
});

afterAll(async () => {
  await gateway?.app.close();
  await tree?.server.close();
  await scores?.server.close();
});

/** `children { ... }` nested so that the selection is `levels` deep, `leaf` at the bottom. */
const nested = (levels: number, leaf = 'id'): string =>
  levels <= 1 ? leaf : `children { ${nested(levels - 1, leaf)} }`;
/** A query `depth` levels deep (`node` is level 1). */
const deepQuery = (depth: number, leaf = 'id') => `{ node { ${nested(depth - 1, leaf)} } }`;
const aliased = (count: number, field: string, prefix = 'a') =>
  range(count)
    .map((i) => `${prefix}${i}: ${field}`)
    .join(' ');

/** Asserts a refusal: HTTP 400, no data, a BAD_USER_INPUT error with `reason` and the limit in its message. */
function expectRefused(result: GraphQLResult, reason: string, limit: number) {
  expect(result.status).toBe(400);
  expect(result.body.data).toBeUndefined();
  const error = result.body.errors?.find((e) => e.extensions?.reason === reason);
  expect(error, `an error with reason ${reason} in ${JSON.stringify(result.body)}`).toBeDefined();
  expect(error?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason, limit });
  expect(error?.message).toContain(String(limit));
  for (const other of result.body.errors ?? []) expect(other.extensions?.code).toBe('BAD_USER_INPUT');
}

/** `request` refused with `reason`, and no resolver ran for it. */
async function expectRefusedUntouched(request: () => Promise<GraphQLResult>, reason: string, limit: number) {
  const before = { resolved, touches };
  expectRefused(await request(), reason, limit);
  expect({ resolved, touches }).toEqual(before);
}

const targets: Array<[string, () => string]> = [
  ['through the gateway', () => gateway.url],
  ['calling the subgraph directly', () => tree.url],
];

describe.each(targets)('operation limits %s', (_label, urlOf) => {
  const send = (query: string, variables?: Record<string, unknown>) => graphql(urlOf(), query, variables);

  it('refuses a query deeper than 12 levels and serves one 12 levels deep', async () => {
    await expectRefusedUntouched(() => send(deepQuery(13)), 'MAX_DEPTH', 12);
    const ok = await send(deepQuery(12));
    expect(ok.status).toBe(200);
    expect(ok.body.errors).toBeUndefined();
  });

  it('refuses more than 30 aliases', async () => {
    await expectRefusedUntouched(() => send(`{ node { ${aliased(31, 'name')} } }`), 'MAX_ALIASES', 30);
    const ok = await send(`{ node { ${aliased(30, 'name')} } }`);
    expect(ok.body.errors).toBeUndefined();
  });

  it('refuses more than 20 root fields in a query', async () => {
    await expectRefusedUntouched(() => send(`{ ${aliased(21, 'node { id }')} }`), 'MAX_ROOT_FIELDS', 20);
    const ok = await send(`{ ${aliased(20, 'node { id }')} }`);
    expect(ok.body.errors).toBeUndefined();
    expect(Object.keys(ok.body.data ?? {})).toHaveLength(20);
  });

  it('counts root fields behind fragments, and a repeated field once', async () => {
    const query = `{ ...Roots ... on Query { ${aliased(11, 'node { id }', 'b')} } }
      fragment Roots on Query { ${aliased(10, 'node { id }')} node { id } node { id } }`;
    await expectRefusedUntouched(() => send(query), 'MAX_ROOT_FIELDS', 20);
  });

  it('refuses more than 5 root fields in a mutation, so 200 aliased writes never run', async () => {
    await expectRefusedUntouched(() => send(`mutation { ${aliased(6, 'touch')} }`), 'MAX_ROOT_FIELDS', 5);
    const stuffed = await send(`mutation { ${aliased(200, 'touch(label: "x")')} }`);
    expectRefused(stuffed, 'MAX_ROOT_FIELDS', 5);
    expectRefused(stuffed, 'MAX_ALIASES', 30);
    expect(touches).toBe(0);
    const ok = await send(`mutation { ${aliased(5, 'touch')} }`);
    expect(ok.body.errors).toBeUndefined();
    expect(touches).toBe(5);
    touches = 0;
  });

  it('refuses more than 50 directives', async () => {
    const withDirectives = (count: number) => `{ node { ${'name @include(if: true) '.repeat(count)} } }`;
    await expectRefusedUntouched(() => send(withDirectives(51)), 'MAX_DIRECTIVES', 50);
    expect((await send(withDirectives(50))).body.errors).toBeUndefined();
  });

  it('stops parsing a token flood at 15,000 tokens', async () => {
    // About 750 kB of `name name name ...`: within the body limit, far over the token limit.
    await expectRefusedUntouched(() => send(`{ node { ${'name '.repeat(150_000)} } }`), 'MAX_TOKENS', 15_000);
    const result = await send(`{ node { ${'name '.repeat(16_000)} } }`);
    expectRefused(result, 'MAX_TOKENS', 15_000);
    expect(result.body.errors?.[0]?.message).toBe('The document exceeds the limit of 15000 tokens');
  });

  it('refuses a query whose cost is over 20,000, and serves a page of 100 with nested fields', async () => {
    // 100 nodes × 100 children: a cost of 52,700, though only 3 levels deep and without aliases.
    await expectRefusedUntouched(
      () => send('{ nodes(first: 100) { children(first: 100) { id } } }'),
      'MAX_COST',
      20_000,
    );
    const ok = await send('{ nodes(first: 100) { id name children(first: 5) { id name } } }');
    expect(ok.body.errors).toBeUndefined();
  });
});

describe('what the gateway sends subgraphs for an operation it accepted', () => {
  it('serves a federated page: entity fetches with 100 representations', async () => {
    const result = await graphql<{ nodes: Array<{ id: string; score: number; children: unknown[] }> }>(
      gateway.url,
      '{ nodes(first: 100) { id name score children(first: 2) { id score } } }',
    );
    expect(result.body.errors).toBeUndefined();
    expect(result.body.data?.nodes).toHaveLength(100);
    expect(result.body.data?.nodes[7]).toEqual({
      id: 'n7',
      name: 'node n7',
      score: 2,
      children: [
        { id: 'n7.0', score: 4 },
        { id: 'n7.1', score: 4 },
      ],
    });
  });

  it('stays within the subgraph limits at the gateway limits: depth 12, 30 aliases, 20 root fields', async () => {
    // The deepest field lives in the other subgraph: its `_entities` fetch starts at level 1 again.
    const deep = await graphql(gateway.url, deepQuery(12, 'id score'));
    expect(deep.body.errors).toBeUndefined();
    // Aliases of both subgraphs' fields, in fragments: each subgraph fetch carries its own share.
    const aliases = await graphql(
      gateway.url,
      `{ node { ...Fields } } fragment Fields on Node { ${aliased(15, 'name')} ${aliased(15, 'score', 's')} }`,
    );
    expect(aliases.body.errors).toBeUndefined();
    const roots = await graphql(gateway.url, `{ ${aliased(20, 'node { id name score }')} }`);
    expect(roots.body.errors).toBeUndefined();
  });
});

describe('operation limits from the environment', () => {
  let strict: GatewayUnderTest;
  let unlimited: GatewayUnderTest;

  beforeAll(async () => {
    const subgraphs = [
      { name: 'tree', url: tree.url, typeDefs: treeTypeDefs },
      { name: 'scores', url: scores.url, typeDefs: scoresTypeDefs },
    ];
    strict = await startGatewayWith({
      subgraphs,
      env: { GRAPHQL_MAX_DEPTH: '3', GRAPHQL_MAX_ALIASES: '2', GRAPHQL_MAX_MUTATIONS: '1' },
    });
    unlimited = await startGatewayWith({ subgraphs, env: { GRAPHQL_MAX_DEPTH: '0' } });
  });

  afterAll(async () => {
    await strict?.app.close();
    await unlimited?.app.close();
  });

  it('applies the configured limits', async () => {
    expectRefused(await graphql(strict.url, deepQuery(4)), 'MAX_DEPTH', 3);
    expectRefused(await graphql(strict.url, `{ node { ${aliased(3, 'id')} } }`), 'MAX_ALIASES', 2);
    await expectRefusedUntouched(
      () => graphql(strict.url, `mutation { ${aliased(2, 'touch')} }`),
      'MAX_ROOT_FIELDS',
      1,
    );
    expect((await graphql(strict.url, deepQuery(3))).body.errors).toBeUndefined();
  });

  it('turns a limit off with 0 (the subgraph still applies its own)', async () => {
    // The gateway lets 13 levels through; the subgraph, at the default, refuses them before resolving.
    const before = resolved;
    const result = await graphql(unlimited.url, deepQuery(13));
    expect(result.body.data).toBeNull();
    expect(result.body.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      reason: 'MAX_DEPTH',
    });
    expect(resolved).toBe(before);
  });
});
