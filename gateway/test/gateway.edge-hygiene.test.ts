import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EchoUnderTest,
  echoTypeDefs,
  type GatewayUnderTest,
  graphql,
  startEcho,
  startGatewayWith,
} from './helpers/echo-stack.js';

// What the gateway gives away and passes on: introspection and field suggestions only in development (or when
// asked for), the request id and trace context only when well-formed, persisted queries only up to a size.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const INTROSPECTION = '{ __schema { queryType { name } } }';
const TYPO = '{ echo { authorizaton } }';
const GRAPHQL_RESPONSE = { accept: 'application/graphql-response+json' };

type Echoed = {
  echo: {
    requestId: string;
    traceparent: string | null;
    tracestate: string | null;
  };
};
const ECHO_HEADERS = '{ echo { requestId traceparent tracestate } }';

let echo: EchoUnderTest;
const subgraphs = () => [{ name: 'echo', url: echo.url, typeDefs: echoTypeDefs }];

beforeAll(async () => {
  echo = await startEcho();
});

afterAll(async () => {
  await echo?.server.close();
});

describe('introspection and suggestions', () => {
  const gateways: Record<string, GatewayUnderTest> = {};

  beforeAll(async () => {
    gateways.production = await startGatewayWith({ subgraphs: subgraphs(), env: { NODE_ENV: 'production' } });
    gateways.development = await startGatewayWith({
      subgraphs: subgraphs(),
      env: { NODE_ENV: 'development' },
    });
    gateways.productionOptIn = await startGatewayWith({
      subgraphs: subgraphs(),
      env: { NODE_ENV: 'production', GRAPHQL_INTROSPECTION: 'true' },
    });
    gateways.developmentOptOut = await startGatewayWith({
      subgraphs: subgraphs(),
      env: { NODE_ENV: 'development', GRAPHQL_INTROSPECTION: 'false' },
    });
  });

  afterAll(async () => {
    for (const gateway of Object.values(gateways)) await gateway.app.close();
  });

  it('refuses introspection in production, and hides "did you mean" suggestions', async () => {
    for (const name of ['production', 'developmentOptOut']) {
      const url = gateways[name]!.url;
      // HTTP 400 under the spec's media type (200 with the same errors under application/json).
      const introspection = await graphql(url, INTROSPECTION, undefined, GRAPHQL_RESPONSE);
      expect(introspection.status).toBe(400);
      expect(introspection.body.data).toBeUndefined();
      expect(introspection.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      const typo = await graphql(url, TYPO, undefined, GRAPHQL_RESPONSE);
      expect(typo.status).toBe(400);
      expect(typo.body.errors?.[0]?.message).toBe('Cannot query field "authorizaton" on type "Echo".');
      expect(JSON.stringify(typo.body)).not.toMatch(/Did you mean|"authorization"/);
    }
  });

  it('answers introspection and suggests fields in development, or when GRAPHQL_INTROSPECTION=true', async () => {
    for (const name of ['development', 'productionOptIn']) {
      const url = gateways[name]!.url;
      const introspection = await graphql(url, INTROSPECTION);
      expect(introspection.body).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
      const typo = await graphql(url, TYPO);
      expect(typo.body.errors?.[0]?.message).toBe(
        'Cannot query field "authorizaton" on type "Echo". Did you mean "authorization"?',
      );
    }
  });

  it('still answers __typename in production', async () => {
    const result = await graphql(gateways.production!.url, '{ __typename }');
    expect(result.body).toEqual({ data: { __typename: 'Query' } });
  });
});

describe('request ids and trace context', () => {
  let gateway: GatewayUnderTest;

  beforeAll(async () => {
    gateway = await startGatewayWith({ subgraphs: subgraphs() });
  });

  afterAll(async () => {
    await gateway?.app.close();
  });

  const echoed = (headers: Record<string, string> = {}) =>
    graphql<Echoed>(gateway.url, ECHO_HEADERS, undefined, headers);

  it('keeps a well-formed x-request-id, answers with it and forwards it to the subgraph', async () => {
    for (const id of ['req-42', 'a1b2c3.d4:E5_f6', 'x'.repeat(128)]) {
      const result = await echoed({ 'x-request-id': id });
      expect(result.body.data?.echo.requestId).toBe(id);
      expect(result.headers.get('x-request-id')).toBe(id);
    }
  });

  it('replaces a spoofed or malformed x-request-id with a fresh one, the one the subgraph gets', async () => {
    const spoofed = [
      'two words',
      '<script>alert(1)</script>',
      'x'.repeat(129),
      'id"\\injected',
      'café',
      'a,b',
    ];
    const seen = new Set<string>();
    for (const id of spoofed) {
      const result = await echoed({ 'x-request-id': id });
      const forwarded = result.body.data?.echo.requestId;
      expect(forwarded).toMatch(UUID);
      expect(result.headers.get('x-request-id')).toBe(forwarded);
      seen.add(forwarded!);
    }
    const none = await echoed();
    expect(none.body.data?.echo.requestId).toMatch(UUID);
    seen.add(none.body.data!.echo.requestId);
    expect(seen.size).toBe(spoofed.length + 1);
  });

  const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

  it('passes a valid traceparent and tracestate on to the subgraph', async () => {
    const tracestate = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';
    const result = await echoed({ traceparent: TRACEPARENT, tracestate });
    expect(result.body.data?.echo).toMatchObject({ traceparent: TRACEPARENT, tracestate });
    const alone = await echoed({ traceparent: TRACEPARENT });
    expect(alone.body.data?.echo).toMatchObject({ traceparent: TRACEPARENT, tracestate: null });
  });

  it('drops an invalid traceparent, and the tracestate that came with it', async () => {
    for (const traceparent of [
      'garbage',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      `${TRACEPARENT}-extra`,
    ]) {
      const result = await echoed({ traceparent, tracestate: 'congo=t61rcWkgMzE' });
      expect(result.body.data?.echo).toMatchObject({ traceparent: null, tracestate: null });
    }
  });

  it('keeps a valid traceparent but drops an invalid tracestate', async () => {
    for (const tracestate of ['no-equals-sign', 'UPPER=1', 'a=1,a=2', `k=${'v'.repeat(600)}`]) {
      const result = await echoed({ traceparent: TRACEPARENT, tracestate });
      expect(result.body.data?.echo).toMatchObject({ traceparent: TRACEPARENT, tracestate: null });
    }
  });
});

describe('persisted queries', () => {
  let gateway: GatewayUnderTest;
  let small: GatewayUnderTest;

  beforeAll(async () => {
    gateway = await startGatewayWith({ subgraphs: subgraphs() });
    small = await startGatewayWith({ subgraphs: subgraphs(), env: { APQ_MAX_QUERY_BYTES: '100' } });
  });

  afterAll(async () => {
    await gateway?.app.close();
    await small?.app.close();
  });

  const hashOf = (query: string) => ({
    persistedQuery: { version: 1, sha256Hash: createHash('sha256').update(query).digest('hex') },
  });
  const send = async (url: string, body: Record<string, unknown>) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return {
      status: response.status,
      body: (await response.json()) as {
        data?: unknown;
        errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
      },
    };
  };

  it('refuses to register a query over 32 KiB, and does not run it', async () => {
    // A valid query padded with a comment: few tokens, many bytes.
    const query = `# ${'x'.repeat(40 * 1024)}\n{ echo { requestId } }`;
    const before = echo.calls();
    const refused = await send(gateway.url, { query, extensions: hashOf(query) });
    expect(refused.status).toBe(400);
    expect(refused.body.data).toBeUndefined();
    expect(refused.body.errors?.[0]).toMatchObject({
      message: `A persisted query may have 32768 bytes at most; this one has ${Buffer.byteLength(query)}`,
      extensions: { code: 'BAD_USER_INPUT', reason: 'MAX_PERSISTED_QUERY_BYTES', limit: 32768 },
    });
    expect(echo.calls()).toBe(before);
    // Not registered: its hash is unknown.
    const byHash = await send(gateway.url, { extensions: hashOf(query) });
    expect(byHash.body.errors?.[0]?.extensions).toMatchObject({ reason: 'PERSISTED_QUERY_NOT_FOUND' });
    // Sent as a plain query, it runs.
    const plain = await send(gateway.url, { query });
    expect(plain.body.errors).toBeUndefined();
  });

  it('registers and serves a query within the limit', async () => {
    const query = '{ echo { forwardedFor } }';
    expect((await send(gateway.url, { query, extensions: hashOf(query) })).body.errors).toBeUndefined();
    expect((await send(gateway.url, { extensions: hashOf(query) })).body).toEqual({
      data: { echo: { forwardedFor: '127.0.0.1' } },
    });
  });

  it('takes the limit from APQ_MAX_QUERY_BYTES', async () => {
    const query = `{ echo { forwardedFor requestId traceparent tracestate authorization } ${' '.repeat(100)}}`;
    const refused = await send(small.url, { query, extensions: hashOf(query) });
    expect(refused.body.errors?.[0]?.extensions).toMatchObject({
      reason: 'MAX_PERSISTED_QUERY_BYTES',
      limit: 100,
    });
  });
});
