import { createHash } from 'node:crypto';
import { createSubgraphServer, type GraphQLHttpServer } from '@aiva/shared';
import { parse } from 'graphql';
import { auditServer } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bearer,
  type EchoUnderTest,
  echoTypeDefs,
  type GatewayUnderTest,
  silentLogger,
  startEcho,
  startGatewayWith,
  tokens,
} from './helpers/echo-stack.js';

// The GraphQL-over-HTTP spec at the gateway, over real HTTP: its own audit (graphql-http's, all 61 audits), the
// status codes per `accept`, GET for queries (variables, extensions) and never for mutations, and CSRF
// prevention that still lets the spec's plain GETs through.

const GRAPHQL_RESPONSE = 'application/graphql-response+json';

/** A subgraph with a mutation, to show that a mutation never runs over GET. */
const counterTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
  type Query { count: Int! }
  type Mutation { bump: Int! }
`);

let echo: EchoUnderTest;
let counter: { server: GraphQLHttpServer; url: string; bumps: () => number };
let gateway: GatewayUnderTest;

async function startCounter() {
  let bumps = 0;
  const server = await createSubgraphServer({
    name: 'counter',
    logger: silentLogger,
    typeDefs: counterTypeDefs,
    resolvers: {
      Query: { count: () => bumps },
      Mutation: { bump: () => ++bumps },
    },
  });
  const base = await server.listen({ port: 0, host: '127.0.0.1' });
  return { server, url: `${base}/graphql`, bumps: () => bumps };
}

beforeAll(async () => {
  echo = await startEcho();
  counter = await startCounter();
  gateway = await startGatewayWith({
    subgraphs: [
      { name: 'echo', url: echo.url, typeDefs: echoTypeDefs },
      { name: 'counter', url: counter.url, typeDefs: counterTypeDefs },
    ],
    // The audit's queries ask `__type(name: ...)`, an introspection field: without introspection (the
    // production default) they are refused as validation errors, which is policy, not protocol.
    env: { GRAPHQL_INTROSPECTION: 'true' },
    verifier: tokens.verifier,
  });
});

afterAll(async () => {
  await gateway?.app.close();
  await counter?.server.close();
  await echo?.server.close();
});

/** A GET of `/graphql` with these parameters (URL-encoded) and headers. */
async function get(params: Record<string, string>, headers: Record<string, string> = {}) {
  const url = new URL(gateway.url);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  const response = await fetch(url, { headers });
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body: (await response.json()) as {
      data?: Record<string, unknown>;
      errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
    },
  };
}

/** A POST of `body` (JSON unless a string) with these headers. */
async function post(body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(gateway.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body: (await response.json()) as {
      data?: unknown;
      errors?: Array<{ extensions?: Record<string, unknown> }>;
    },
  };
}

describe('the GraphQL-over-HTTP audit (graphql-http)', () => {
  it('passes all 61 audits', async () => {
    const results = await auditServer({ url: gateway.url });
    const failed = results
      .filter((result) => result.status !== 'ok')
      .map((result) => `${result.id} ${result.name}: ${'reason' in result ? result.reason : ''}`);
    expect(failed).toEqual([]);
    expect(results).toHaveLength(61);
  });

  it('fails only the audits that ask __type when introspection is off (the production default)', async () => {
    const production = await startGatewayWith({
      subgraphs: [{ name: 'echo', url: echo.url, typeDefs: echoTypeDefs }],
      env: { NODE_ENV: 'production' },
    });
    try {
      const results = await auditServer({ url: production.url });
      const failed = results.filter((result) => result.status !== 'ok').map((result) => result.id);
      // Their queries ask `__type(name: ...)` and expect data (BF61 asks it too, but checks the status only).
      expect(failed.sort()).toEqual(['28B9', '2EA1', '6A70', 'D6D5']);
    } finally {
      await production.app.close();
    }
  });
});

describe('status codes per accept', () => {
  const documentErrors = {
    'a document that does not parse': { query: '{ echo {' },
    'a document that does not validate': { query: '{ echo { nope } }' },
    'variables that do not coerce': { query: 'query ($n: Int!) { __typename }', variables: { n: 'x' } },
  };

  for (const [name, body] of Object.entries(documentErrors)) {
    it(`answers ${name} with 400 under ${GRAPHQL_RESPONSE}, 200 under application/json`, async () => {
      const strict = await post(body, { accept: GRAPHQL_RESPONSE });
      expect(strict.status).toBe(400);
      expect(strict.contentType).toContain(GRAPHQL_RESPONSE);
      expect(strict.body.data).toBeUndefined();
      expect(strict.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      for (const accept of ['application/json', '*/*', undefined]) {
        const legacy = await post(body, accept ? { accept } : {});
        expect(legacy.status, `accept: ${accept}`).toBe(200);
        expect(legacy.contentType).toContain('application/json');
        expect(legacy.body.data).toBeUndefined();
        expect(legacy.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      }
    });
  }

  it('answers a body that is not JSON, or bad parameters, with 400 whatever the client accepts', async () => {
    for (const accept of [GRAPHQL_RESPONSE, 'application/json']) {
      expect((await post('{"query": "{ __typename }"', { accept })).status).toBe(400);
      expect((await post({ qeury: '{ __typename }' }, { accept })).status).toBe(400);
      expect((await post({ query: '{ __typename }', variables: 'x' }, { accept })).status).toBe(400);
    }
  });

  it('keeps the operation limits: an operation over one is refused before any subgraph is called', async () => {
    const before = echo.calls();
    const aliases = Array.from({ length: 40 }, (_, i) => `a${i}: echo { requestId }`).join(' ');
    for (const accept of [GRAPHQL_RESPONSE, 'application/json']) {
      const refused = await post({ query: `{ ${aliases} }` }, { accept });
      expect(refused.status).toBe(accept === GRAPHQL_RESPONSE ? 400 : 200);
      expect(refused.body.errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        reason: 'MAX_ALIASES',
      });
    }
    expect(echo.calls()).toBe(before);
  });
});

describe('GET', () => {
  it('runs queries with URL-encoded variables', async () => {
    const result = await get(
      {
        query: 'query Echo($with: Boolean!) { echo @include(if: $with) { requestId } }',
        variables: JSON.stringify({ with: true }),
      },
      { accept: GRAPHQL_RESPONSE },
    );
    expect(result.status).toBe(200);
    expect(result.contentType).toContain(GRAPHQL_RESPONSE);
    expect(result.body.data?.echo).toMatchObject({ requestId: expect.any(String) });
  });

  it('runs persisted queries from URL-encoded extensions', async () => {
    const query = '{ count }';
    const extensions = {
      persistedQuery: { version: 1, sha256Hash: createHash('sha256').update(query).digest('hex') },
    };
    const unknown = await get({ extensions: JSON.stringify(extensions) });
    expect(unknown.body.errors?.[0]?.extensions?.reason).toBe('PERSISTED_QUERY_NOT_FOUND');
    const registered = await get({ query, extensions: JSON.stringify(extensions) });
    expect(registered.body).toEqual({ data: { count: expect.any(Number) } });
    const byHash = await get({ extensions: JSON.stringify(extensions) });
    expect(byHash.body).toEqual(registered.body);
  });

  it('never runs a mutation: HTTP 405, allow: POST', async () => {
    const before = counter.bumps();
    for (const accept of [GRAPHQL_RESPONSE, 'application/json']) {
      const url = new URL(gateway.url);
      url.searchParams.set('query', 'mutation { bump }');
      const response = await fetch(url, { headers: { accept, 'apollo-require-preflight': 'true' } });
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('POST');
    }
    expect(counter.bumps()).toBe(before);
    const posted = await post({ query: 'mutation { bump }' });
    expect(posted.body).toEqual({ data: { bump: before + 1 } });
  });
});

describe('CSRF prevention', () => {
  const query = { query: '{ count }' };
  const PREFLIGHT = { 'apollo-require-preflight': 'true' };

  it('serves a simple GET that carries no credentials: an anonymous query', async () => {
    expect((await get(query)).status).toBe(200);
  });

  it('refuses a simple GET that carries a cookie or an Authorization header, unless preflighted', async () => {
    const token = await tokens.token('01890000-0000-7000-8000-0000000000c5');
    const refusals = [{ cookie: 'session=abc' }, bearer(token), { authorization: 'Basic dTpw' }];
    for (const credentials of refusals) {
      const refused = await get(query, credentials);
      expect(refused.status).toBe(400);
      expect(refused.body.data).toBeUndefined();
      expect(refused.body.errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        reason: 'CSRF_PREVENTED',
      });
    }
    const credentialed: Array<Record<string, string>> = [{ cookie: 'session=abc' }, bearer(token)];
    const proofs: Array<Record<string, string>> = [
      PREFLIGHT,
      { 'x-apollo-operation-name': 'Count' },
      { 'content-type': 'application/json' },
    ];
    for (const credentials of credentialed) {
      for (const proof of proofs) {
        const allowed = await get(query, { ...credentials, ...proof });
        expect(allowed.status).toBe(200);
        expect(allowed.body.data).toEqual({ count: expect.any(Number) });
      }
    }
    // Preflighted, the request is checked as any other: a Basic header is not an access token.
    expect((await get(query, { authorization: 'Basic dTpw', ...PREFLIGHT })).status).toBe(401);
  });

  it('never runs a form-like POST', async () => {
    const before = counter.bumps();
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data']) {
      const response = await fetch(gateway.url, {
        method: 'POST',
        headers: { 'content-type': contentType, cookie: 'session=abc' },
        body: JSON.stringify({ query: 'mutation { bump }' }),
      });
      expect(response.status, contentType).toBeGreaterThanOrEqual(400);
      expect(response.status, contentType).toBeLessThan(500);
    }
    expect(counter.bumps()).toBe(before);
  });
});
