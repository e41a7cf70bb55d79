import { parse } from 'graphql';
import { afterEach, describe, expect, it } from 'vitest';
import { commonEnvSchema, loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import type { GraphQLHttpServer, RequestContext } from '../src/server/graphql-http-server.js';
import {
  DEFAULT_OPERATION_LIMITS,
  graphqlEdgeFromEnv,
  introspectionOf,
  operationLimitsOf,
} from '../src/server/operation-limits.js';
import type { ReadinessCheck } from '../src/server/readiness.js';
import { requestIdOf, traceContextOf } from '../src/server/request-identity.js';
import { createSubgraphServer, type SubgraphServerOptions } from '../src/server/subgraph-server.js';

// The server kit's edge, on a subgraph server called directly: limits and introspection from the environment
// or the options, suggestions hidden with introspection, `/ready` and `/metrics` that do not work harder when
// asked faster, request ids.

const typeDefs = parse(/* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
  input ThingInput {
    name: String!
  }
  type Thing {
    name: String!
    parent: Thing
  }
  type Query {
    thing(input: ThingInput!): Thing!
  }
`);

const resolvers = {
  Query: { thing: (_: unknown, { input }: { input: { name: string } }) => ({ name: input.name }) },
  Thing: { parent: (thing: { name: string }) => ({ name: `parent of ${thing.name}` }) },
};

const open: GraphQLHttpServer[] = [];

async function start(options: Partial<SubgraphServerOptions<RequestContext>> = {}) {
  const server = await createSubgraphServer({
    name: 'things',
    logger: createLogger('t', { level: 'silent' }),
    typeDefs,
    resolvers,
    ...options,
  });
  open.push(server);
  const base = await server.listen({ port: 0, host: '127.0.0.1' });
  return { server, base, url: `${base}/graphql` };
}

async function post(url: string, query: string, variables?: Record<string, unknown>) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return {
    status: response.status,
    body: (await response.json()) as {
      data?: unknown;
      errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
    },
  };
}

/** Runs `body` with process.env variables set, then puts them back. */
async function withEnv<T>(vars: Record<string, string | undefined>, body: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(vars);
  try {
    return await body();
  } finally {
    apply(saved);
  }
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((server) => server.close()));
});

describe('edge settings from the environment', () => {
  it('has defaults for every limit, and names a bad variable', () => {
    expect(operationLimitsOf(loadConfig(commonEnvSchema, {}))).toEqual(DEFAULT_OPERATION_LIMITS);
    expect(DEFAULT_OPERATION_LIMITS).toEqual({
      depth: 12,
      aliases: 30,
      rootFields: 20,
      mutationRootFields: 5,
      directives: 50,
      tokens: 15_000,
      cost: 20_000,
      persistedQueryBytes: 32_768,
    });
    expect(() => loadConfig(commonEnvSchema, { GRAPHQL_MAX_DEPTH: 'deep' })).toThrow(/GRAPHQL_MAX_DEPTH/);
    expect(() => loadConfig(commonEnvSchema, { GRAPHQL_MAX_COST: '-1' })).toThrow(/GRAPHQL_MAX_COST/);
    expect(() => loadConfig(commonEnvSchema, { GRAPHQL_INTROSPECTION: 'yes' })).toThrow(
      /GRAPHQL_INTROSPECTION: must be true or false/,
    );
  });

  it('turns introspection on in development only, unless GRAPHQL_INTROSPECTION says otherwise', () => {
    const of = (env: Record<string, string>) => introspectionOf(loadConfig(commonEnvSchema, env));
    expect(of({})).toBe(true);
    expect(of({ NODE_ENV: 'development' })).toBe(true);
    expect(of({ NODE_ENV: 'test' })).toBe(false);
    expect(of({ NODE_ENV: 'production' })).toBe(false);
    expect(of({ NODE_ENV: 'production', GRAPHQL_INTROSPECTION: 'true' })).toBe(true);
    expect(of({ NODE_ENV: 'development', GRAPHQL_INTROSPECTION: 'false' })).toBe(false);
    expect(graphqlEdgeFromEnv({ GRAPHQL_MAX_ALIASES: '3' }).limits.aliases).toBe(3);
  });

  it('a subgraph server without options takes them from process.env', async () => {
    const INTROSPECTION = '{ __schema { queryType { name } } }';
    const production = await withEnv({ NODE_ENV: 'production', GRAPHQL_MAX_DEPTH: '2' }, () => start());
    expect((await post(production.url, INTROSPECTION)).body.errors?.[0]?.extensions?.code).toBe(
      'BAD_USER_INPUT',
    );
    const deep = await post(production.url, '{ thing(input: { name: "a" }) { parent { name } } }');
    expect(deep.body.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      reason: 'MAX_DEPTH',
      limit: 2,
    });
    const development = await withEnv({ NODE_ENV: 'development', GRAPHQL_INTROSPECTION: undefined }, () =>
      start(),
    );
    expect((await post(development.url, INTROSPECTION)).body).toEqual({
      data: { __schema: { queryType: { name: 'Query' } } },
    });
  });

  it('options win over the environment', async () => {
    const { url } = await withEnv({ NODE_ENV: 'development' }, () =>
      start({ introspection: false, operationLimits: { ...DEFAULT_OPERATION_LIMITS, depth: 1 } }),
    );
    expect((await post(url, '{ __schema { queryType { name } } }')).body.errors?.[0]?.extensions?.code).toBe(
      'BAD_USER_INPUT',
    );
    expect((await post(url, '{ __typename }')).body).toEqual({ data: { __typename: 'Query' } });
    const deep = await post(url, '{ thing(input: { name: "a" }) { name } }');
    expect(deep.body.errors?.[0]?.extensions).toMatchObject({ reason: 'MAX_DEPTH', limit: 1, found: 2 });
  });
});

describe('suggestions', () => {
  const TYPO_FIELD = '{ thing(input: { name: "a" }) { nmae } }';
  const TYPO_VARIABLE = 'query($input: ThingInput!) { thing(input: $input) { name } }';

  it('are hidden without introspection, in validation and in variable errors alike', async () => {
    const { url } = await start({ introspection: false });
    const field = await post(url, TYPO_FIELD);
    expect(field.body.errors?.[0]?.message).toBe('Cannot query field "nmae" on type "Thing".');
    const variable = await post(url, TYPO_VARIABLE, { input: { nam: 'a', name: 'b' } });
    // A variable error: HTTP 200 under application/json (this client's), as the GraphQL-over-HTTP spec asks.
    expect(variable.status).toBe(200);
    expect(variable.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(variable.body.errors?.[0]?.message).toContain('Field "nam" is not defined by type "ThingInput".');
    expect(JSON.stringify([field.body, variable.body])).not.toContain('Did you mean');
  });

  it('are given with introspection', async () => {
    const { url } = await start({ introspection: true });
    expect((await post(url, TYPO_FIELD)).body.errors?.[0]?.message).toContain('Did you mean "name"?');
  });
});

describe('/ready and /metrics under repeated probes', () => {
  function countingCheck(): ReadinessCheck & { calls: number } {
    const check = {
      name: 'db',
      calls: 0,
      check: async () => {
        check.calls++;
      },
    };
    return check;
  }

  it('runs the readiness checks once per period, however many probes come, concurrent or not', async () => {
    const check = countingCheck();
    const { base } = await start({ readiness: [check], opsCacheMs: 60_000 });
    const concurrent = await Promise.all(Array.from({ length: 10 }, () => fetch(`${base}/ready`)));
    expect(concurrent.map((r) => r.status)).toEqual(Array.from({ length: 10 }, () => 200));
    for (let i = 0; i < 5; i++) {
      const response = await fetch(`${base}/ready`);
      expect(await response.json()).toEqual({ status: 'ready', service: 'things', checks: { db: 'up' } });
    }
    expect(check.calls).toBe(1);
  });

  it('runs them again once the period is over (0: every probe that does not share a run)', async () => {
    const check = countingCheck();
    const { base } = await start({ readiness: [check], opsCacheMs: 0 });
    for (let i = 0; i < 3; i++) expect((await fetch(`${base}/ready`)).status).toBe(200);
    expect(check.calls).toBe(3);
  });

  it('renders /metrics once per period', async () => {
    const { server, base, url } = await start({ opsCacheMs: 60_000 });
    const render = server.metrics.render.bind(server.metrics);
    let renders = 0;
    server.metrics.render = () => {
      renders++;
      return render();
    };
    const first = await (await fetch(`${base}/metrics`)).text();
    await post(url, 'query Counted { __typename }');
    const again = await Promise.all(
      Array.from({ length: 5 }, async () => (await fetch(`${base}/metrics`)).text()),
    );
    expect(again.every((text) => text === first)).toBe(true);
    expect(renders).toBe(1);
  });
});

describe('request ids', () => {
  it('answers with the request id: the client one when well-formed, else a fresh UUID', async () => {
    const { base } = await start();
    const kept = await fetch(`${base}/health`, { headers: { 'x-request-id': 'client-id-1' } });
    expect(kept.headers.get('x-request-id')).toBe('client-id-1');
    const replaced = await fetch(`${base}/health`, { headers: { 'x-request-id': 'bad id\twith tab' } });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('accepts 1 to 128 characters of [A-Za-z0-9._:-] only', () => {
    const of = (value: string | string[] | undefined) => requestIdOf({ headers: { 'x-request-id': value } });
    expect(of('Ab9._:-')).toBe('Ab9._:-');
    expect(of('x'.repeat(128))).toBe('x'.repeat(128));
    for (const bad of ['', 'x'.repeat(129), 'a b', 'a/b', 'ü', ['a', 'b'], undefined]) {
      expect(of(bad)).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('keeps a trace context only when valid', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    expect(traceContextOf({ traceparent, tracestate: 'a=1, b@sys=2' })).toEqual({
      traceparent,
      tracestate: 'a=1,b@sys=2',
    });
    // A future version may carry more fields; two traceparent headers are one invalid value.
    expect(traceContextOf({ traceparent: `cc-${traceparent.slice(3)}-more` }).traceparent).toBeDefined();
    expect(traceContextOf({ traceparent: [traceparent, traceparent] })).toEqual({});
    expect(traceContextOf({ tracestate: 'a=1' })).toEqual({});
  });
});

describe('deadlines', () => {
  const slowTypeDefs = parse(/* GraphQL */ `
    extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
    type Slow {
      after: String
    }
    type Query {
      "Sleeps, ignoring the request's signal, then has a field of its own."
      sleepy(ms: Int!): Slow
      "Waits for the request's signal: work that stops when the budget is spent."
      careful: String
    }
  `);
  const ran: string[] = [];
  const slowResolvers = {
    Query: {
      sleepy: async (_: unknown, { ms }: { ms: number }) => {
        await new Promise((resolve) => setTimeout(resolve, ms));
        return {};
      },
      careful: (_: unknown, __: unknown, context: RequestContext) =>
        new Promise((_resolve, reject) => {
          context.signal.addEventListener('abort', () => reject(context.signal.reason), { once: true });
        }),
    },
    Slow: {
      after: () => {
        ran.push('after');
        return 'after';
      },
    },
  };

  async function postWithDeadline(url: string, query: string, deadlineMs: string) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-aiva-deadline-ms': deadlineMs },
      body: JSON.stringify({ query }),
    });
    return {
      status: response.status,
      body: (await response.json()) as {
        data?: unknown;
        errors?: Array<{ extensions?: Record<string, unknown> }>;
      },
    };
  }

  it("answers 504 DEADLINE_EXCEEDED at the caller's deadline, and abandons the fields still to run", async () => {
    ran.length = 0;
    const { server, url } = await start({ typeDefs: slowTypeDefs, resolvers: slowResolvers });
    const result = await postWithDeadline(url, '{ sleepy(ms: 1200) { after } }', '100');
    expect(result.status).toBe(504);
    expect(result.body.errors?.[0]?.extensions).toMatchObject({
      code: 'INTERNAL_SERVER_ERROR',
      reason: 'DEADLINE_EXCEEDED',
    });
    // Once the sleep is over, the field after it does not run.
    await new Promise((resolve) => setTimeout(resolve, 1_400));
    expect(ran).toEqual([]);
    const metrics = await server.metrics.render();
    expect(metrics).toMatch(/aiva_deadline_exceeded_total\{stage="cut_off"[^}]*\} 1/);
    expect(metrics).toMatch(/aiva_deadline_exceeded_total\{stage="abandoned"[^}]*\} 1/);
  });

  it('aborts context.signal at the deadline, so work that listens stops and its field fails', async () => {
    const { url } = await start({ typeDefs: slowTypeDefs, resolvers: slowResolvers });
    const result = await postWithDeadline(url, '{ careful }', '100');
    expect(result.status).toBe(200);
    expect(result.body.errors?.[0]?.extensions).toMatchObject({ reason: 'DEADLINE_EXCEEDED' });
  });

  it('refuses a request whose budget is already spent, and never lets a caller lengthen its own limit', async () => {
    const { url } = await start({
      typeDefs: slowTypeDefs,
      resolvers: slowResolvers,
      timeouts: { requestTimeoutMs: 100 },
    });
    const spent = await postWithDeadline(url, '{ sleepy(ms: 0) { after } }', '0');
    expect(spent.status).toBe(504);
    expect(spent.body.errors?.[0]?.extensions).toMatchObject({ reason: 'DEADLINE_EXCEEDED' });
    // Its own limit (100 ms) holds against a caller's 60 s.
    const longer = await postWithDeadline(url, '{ careful }', '60000');
    expect(longer.body.errors?.[0]?.extensions).toMatchObject({ reason: 'DEADLINE_EXCEEDED' });
  });
});
