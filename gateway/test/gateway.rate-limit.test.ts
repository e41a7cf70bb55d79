import { randomUUID } from 'node:crypto';
import { describeInfra } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bearer,
  type EchoUnderTest,
  echoTypeDefs,
  type GatewayUnderTest,
  graphql,
  startEcho,
  startGatewayWith,
  tokens,
} from './helpers/echo-stack.js';

const ECHO = '{ echo { forwardedFor } }';
const MAX = 5;

let echo: EchoUnderTest;
const subgraphs = () => [{ name: 'echo', url: echo.url, typeDefs: echoTypeDefs }];

/** A client address no other test uses (the gateway believes X-Forwarded-For from 127.0.0.1 here). */
let nextClient = 1;
const newClient = () => `203.0.113.${nextClient++}`;

/** `count` requests in a row; the HTTP statuses. */
async function statuses(url: string, count: number, headers: Record<string, string> = {}): Promise<number[]> {
  const result: number[] = [];
  for (let i = 0; i < count; i++) result.push((await graphql(url, ECHO, undefined, headers)).status);
  return result;
}

const allowed = (count: number) => Array.from({ length: count }, () => 200);

function expectRateLimited(result: Awaited<ReturnType<typeof graphql>>) {
  expect(result.status).toBe(429);
  expect(result.body.data).toBeUndefined();
  expect(result.body.errors).toHaveLength(1);
  const extensions = result.body.errors?.[0]?.extensions;
  expect(extensions?.code).toBe('RATE_LIMITED');
  expect(extensions?.retryAfter).toBeGreaterThan(0);
  expect(extensions?.retryAfter).toBeLessThanOrEqual(60);
  expect(Number(result.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(Number(result.headers.get('retry-after'))).toBe(extensions?.retryAfter);
}

beforeAll(async () => {
  echo = await startEcho();
});

afterAll(async () => {
  await echo?.server.close();
});

describe('rate limits at the gateway (in memory)', () => {
  let gateway: GatewayUnderTest;

  beforeAll(async () => {
    gateway = await startGatewayWith({
      subgraphs: subgraphs(),
      verifier: tokens.verifier,
      env: { RATE_LIMIT_MAX: String(MAX), RATE_LIMIT_WINDOW_SECONDS: '60', TRUST_PROXY: '127.0.0.1' },
    });
  });

  afterAll(async () => {
    await gateway?.app.close();
  });

  it('answers the request over the limit with HTTP 429 RATE_LIMITED, without calling a subgraph', async () => {
    const client = { 'x-forwarded-for': newClient() };
    expect(await statuses(gateway.url, MAX, client)).toEqual(allowed(MAX));
    const before = echo.calls();
    const over = await graphql(gateway.url, ECHO, undefined, client);
    expectRateLimited(over);
    expect(echo.calls()).toBe(before);
    // Another client is not affected.
    expect(await statuses(gateway.url, 1, { 'x-forwarded-for': newClient() })).toEqual([200]);
  });

  it('tells clients their remaining budget', async () => {
    const response = await graphql(gateway.url, ECHO, undefined, { 'x-forwarded-for': newClient() });
    expect(response.headers.get('x-ratelimit-limit')).toBe(String(MAX));
    expect(response.headers.get('x-ratelimit-remaining')).toBe(String(MAX - 1));
  });

  it('passes the client address it believed on to subgraphs', async () => {
    const client = newClient();
    const result = await graphql<{ echo: { forwardedFor: string } }>(gateway.url, ECHO, undefined, {
      'x-forwarded-for': client,
    });
    expect(result.body.data?.echo.forwardedFor).toBe(client);
  });

  it('counts a signed-in user in a bucket of their own, whatever their address', async () => {
    const ip = newClient();
    const alice = {
      ...bearer(await tokens.token('01890000-0000-7000-8000-0000000a11ce')),
      'x-forwarded-for': ip,
    };
    // The address's own budget is spent by anonymous requests...
    expect(await statuses(gateway.url, MAX + 1, { 'x-forwarded-for': ip })).toEqual([...allowed(MAX), 429]);
    // ...yet the signed-in user from that address has a full budget, counted per user.
    expect(await statuses(gateway.url, MAX, alice)).toEqual(allowed(MAX));
    expectRateLimited(await graphql(gateway.url, ECHO, undefined, alice));
    expectRateLimited(
      await graphql(gateway.url, ECHO, undefined, { ...alice, 'x-forwarded-for': newClient() }),
    );
    // Another user from the same address is not affected.
    const bob = {
      ...bearer(await tokens.token('01890000-0000-7000-8000-000000000b0b')),
      'x-forwarded-for': ip,
    };
    expect(await statuses(gateway.url, 1, bob)).toEqual([200]);
  });

  it('counts requests with a bad token against their address', async () => {
    const client = { authorization: 'Bearer not.a-valid.token', 'x-forwarded-for': newClient() };
    const results = await statuses(gateway.url, MAX + 1, client);
    expect(results).toEqual([...Array.from({ length: MAX }, () => 401), 429]);
  });

  it('never limits /health, /ready or /metrics', async () => {
    const client = { 'x-forwarded-for': newClient() };
    await statuses(gateway.url, MAX + 1, client);
    for (const path of ['/health', '/ready', '/metrics']) {
      for (let i = 0; i < MAX + 2; i++) {
        const response = await fetch(`${gateway.base}${path}`, { headers: client });
        expect(response.status).toBe(200);
        expect(response.headers.get('x-ratelimit-limit')).toBeNull();
      }
    }
  });
});

describe('rate limits without a trusted proxy', () => {
  let gateway: GatewayUnderTest;

  beforeAll(async () => {
    gateway = await startGatewayWith({
      subgraphs: subgraphs(),
      verifier: tokens.verifier,
      env: { RATE_LIMIT_MAX: '3' },
    });
  });

  afterAll(async () => {
    await gateway?.app.close();
  });

  it('ignores X-Forwarded-For, so changing it does not reset the budget', async () => {
    const results: number[] = [];
    for (let i = 0; i < 4; i++) {
      results.push((await graphql(gateway.url, ECHO, undefined, { 'x-forwarded-for': newClient() })).status);
    }
    expect(results).toEqual([200, 200, 200, 429]);
  });
});

describe('RATE_LIMIT_MAX=0', () => {
  it('turns rate limiting off', async () => {
    const gateway = await startGatewayWith({ subgraphs: subgraphs(), env: { RATE_LIMIT_MAX: '0' } });
    try {
      const response = await graphql(gateway.url, ECHO);
      expect(response.status).toBe(200);
      expect(response.headers.get('x-ratelimit-limit')).toBeNull();
    } finally {
      await gateway.app.close();
    }
  });
});

// Several gateway instances share one budget per client when they share a Redis.
await describeInfra(
  'gateway rate limits on Redis',
  { envVar: 'REDIS_URL', defaultUrl: 'redis://127.0.0.1:6379' },
  (redisUrl) => {
    let first: GatewayUnderTest;
    let second: GatewayUnderTest;

    beforeAll(async () => {
      // A key prefix unique to this run: counts of earlier (or parallel) runs cannot interfere.
      const cacheKeyPrefix = `test:gateway-rate-limit:${randomUUID()}:`;
      const env = { REDIS_URL: redisUrl, RATE_LIMIT_MAX: String(MAX), TRUST_PROXY: '127.0.0.1' };
      first = await startGatewayWith({
        subgraphs: subgraphs(),
        verifier: tokens.verifier,
        env,
        cacheKeyPrefix,
      });
      second = await startGatewayWith({
        subgraphs: subgraphs(),
        verifier: tokens.verifier,
        env,
        cacheKeyPrefix,
      });
    });

    afterAll(async () => {
      await first?.app.close();
      await second?.app.close();
    });

    it('shares the count between two gateway instances', async () => {
      const client = { 'x-forwarded-for': newClient() };
      expect(await statuses(first.url, 3, client)).toEqual(allowed(3));
      expect(await statuses(second.url, MAX - 3, client)).toEqual(allowed(MAX - 3));
      expectRateLimited(await graphql(first.url, ECHO, undefined, client));
      expectRateLimited(await graphql(second.url, ECHO, undefined, client));
    });

    it('shares a signed-in user’s count too', async () => {
      const user = bearer(await tokens.token('01890000-0000-7000-8000-0000000000c1'));
      expect(await statuses(second.url, MAX, user)).toEqual(allowed(MAX));
      expectRateLimited(await graphql(first.url, ECHO, undefined, user));
    });
  },
);
