import { createSubgraphServer, type GraphQLHttpServer, type RequestContext } from '@aiva/shared';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EchoUnderTest,
  echoTypeDefs,
  type GatewayUnderTest,
  graphql,
  silentLogger,
  startEcho,
  startGatewayWith,
} from './helpers/echo-stack.js';

// The gateway's budget (GRAPHQL_REQUEST_TIMEOUT_MS) bounds its subgraph requests: each is told what is left
// (x-aiva-deadline-ms), and one that has not answered when the budget ends fails alone (DEADLINE_EXCEEDED),
// the other subgraphs' fields being answered.

const BUDGET_MS = 800;

const clockTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
  type Query {
    "The budget this subgraph got, in ms, as it saw it on arrival."
    budgetMs: Int!
    "Never answers (until the request's signal aborts)."
    stall: String
  }
`);

let echo: EchoUnderTest;
let clock: GraphQLHttpServer;
let gateway: GatewayUnderTest;

beforeAll(async () => {
  echo = await startEcho();
  clock = await createSubgraphServer<RequestContext>({
    name: 'clock',
    logger: silentLogger,
    typeDefs: clockTypeDefs,
    // Its own limit is long: only the gateway's header can shorten it.
    timeouts: { requestTimeoutMs: 60_000 },
    resolvers: {
      Query: {
        budgetMs: (_: unknown, __: unknown, ctx: RequestContext) => ctx.deadline - Date.now(),
        stall: () => new Promise(() => {}),
      },
    },
  });
  const clockUrl = `${await clock.listen({ port: 0, host: '127.0.0.1' })}/graphql`;
  gateway = await startGatewayWith({
    subgraphs: [
      { name: 'echo', url: echo.url, typeDefs: echoTypeDefs },
      { name: 'clock', url: clockUrl, typeDefs: clockTypeDefs },
    ],
    env: { GRAPHQL_REQUEST_TIMEOUT_MS: String(BUDGET_MS) },
  });
});

afterAll(async () => {
  await gateway?.app.close();
  await clock?.close();
  await echo?.server.close();
});

describe('request budget at the gateway', () => {
  it('tells a subgraph what is left of the budget', async () => {
    const result = await graphql<{ budgetMs: number }>(gateway.url, '{ budgetMs }');
    expect(result.body.errors).toBeUndefined();
    expect(result.body.data?.budgetMs).toBeGreaterThan(0);
    expect(result.body.data?.budgetMs).toBeLessThanOrEqual(BUDGET_MS);
  });

  it("fails a subgraph that does not answer within the budget, and answers the others' fields", async () => {
    // The stalling subgraph never answers: that the request is answered at all is the budget at work.
    const result = await graphql<{ stall: string | null; echo: { authorization: string | null } }>(
      gateway.url,
      '{ stall echo { authorization } }',
    );
    expect(result.status).toBe(200);
    expect(result.body.data?.echo).toEqual({ authorization: null });
    expect(result.body.data?.stall ?? null).toBeNull();
    expect(result.body.errors?.[0]?.extensions).toMatchObject({
      code: 'INTERNAL_SERVER_ERROR',
      reason: 'DEADLINE_EXCEEDED',
      serviceName: 'clock',
    });
  });

  it('is ready with both subgraphs answering, and names what is degraded otherwise', async () => {
    const ready = await fetch(`${gateway.base}/ready`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as {
      checks: Record<string, string>;
      degraded?: Record<string, string>;
    };
    expect(body.checks).toMatchObject({ echo: 'up', clock: 'up', cache: 'up' });
    // No auth runs here: its keys cannot be fetched, which is reported without making the gateway unready.
    expect(body.degraded).toEqual({ auth_keys: 'down' });
  });
});
