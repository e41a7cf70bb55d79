import { randomUUID } from 'node:crypto';
import { parse } from 'graphql';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Cache } from '../src/cache/cache.js';
import { createMemoryCache } from '../src/cache/memory.js';
import { createRedisCache } from '../src/cache/redis.js';
import { createLogger } from '../src/log.js';
import {
  type GraphQLHttpServer,
  type RequestContext,
  verifiedViewer,
} from '../src/server/graphql-http-server.js';
import {
  CacheRateLimitStore,
  cacheRateLimitStore,
  type RateLimitHits,
  type RateLimitStore,
  rateLimitExceeded,
} from '../src/server/rate-limit-store.js';
import { createSubgraphServer } from '../src/server/subgraph-server.js';
import { createTestTokenIssuer, describeInfra } from '../src/testing/index.js';

/** The store's callback API as a promise, the way @fastify/rate-limit uses it. */
function incr(store: RateLimitStore, key: string, windowMs?: number): Promise<RateLimitHits> {
  return new Promise((resolve, reject) => {
    store.incr(key, (error, result) => (error ? reject(error) : resolve(result!)), windowMs, 10);
  });
}

describe('CacheRateLimitStore on the memory cache', () => {
  let now = 1_000_000;
  let cache: Cache;
  let store: CacheRateLimitStore;

  beforeAll(() => {
    cache = createMemoryCache({ now: () => now });
    store = new CacheRateLimitStore({ cache });
  });

  it('counts hits per key within a window started by the first hit', async () => {
    expect(await incr(store, 'ip:1', 60_000)).toEqual({ current: 1, ttl: 60_000 });
    now += 10_000;
    expect(await incr(store, 'ip:1', 60_000)).toEqual({ current: 2, ttl: 50_000 });
    expect(await incr(store, 'ip:2', 60_000)).toEqual({ current: 1, ttl: 60_000 });
  });

  it('starts a new window once the old one has passed', async () => {
    await incr(store, 'ip:3', 1_000);
    await incr(store, 'ip:3', 1_000);
    now += 1_000;
    expect(await incr(store, 'ip:3', 1_000)).toEqual({ current: 1, ttl: 1_000 });
  });

  it('uses a one-minute window when the plugin passes none', async () => {
    expect((await incr(store, 'ip:default')).ttl).toBe(60_000);
  });

  it('keeps its keys under its prefix in the cache', async () => {
    const prefixed = new CacheRateLimitStore({ cache, keyPrefix: 'rl:test:' });
    await incr(prefixed, 'user:42', 60_000);
    expect(await cache.get('rl:test:user:42')).toBe('1');
    expect(await cache.get('ratelimit:user:42')).toBeNull();
  });

  it('gives a route its own counters through child()', async () => {
    const child = store.child({ routeInfo: { method: 'POST', url: '/graphql' } });
    await incr(store, 'ip:9', 60_000);
    expect((await incr(child, 'ip:9', 60_000)).current).toBe(1);
    expect(await cache.get('ratelimit:POST/graphql:ip:9')).toBe('1');
  });

  it('hands cache failures to the callback as errors', async () => {
    const failing = { ...cache, increment: () => Promise.reject(new Error('redis down')) } as Cache;
    await expect(incr(new CacheRateLimitStore({ cache: failing }), 'ip:1')).rejects.toThrow('redis down');
    const odd = { ...cache, increment: () => Promise.reject('not an error') } as unknown as Cache;
    await expect(incr(new CacheRateLimitStore({ cache: odd }), 'ip:1')).rejects.toThrow('not an error');
  });

  it('does not call back twice when the callback throws', async () => {
    const callback = vi.fn(() => {
      throw new Error('boom in the plugin');
    });
    const unhandled = vi.fn();
    process.on('unhandledRejection', unhandled);
    try {
      store.incr('ip:throws', callback, 60_000);
      await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      process.off('unhandledRejection', unhandled);
    }
    expect(callback).toHaveBeenCalledTimes(1);
  });

  it('cacheRateLimitStore gives the class the plugin instantiates, bound to the cache', async () => {
    const Store = cacheRateLimitStore({ cache, keyPrefix: 'bound:' });
    const instance = new Store({ max: 5, timeWindow: 60_000 });
    expect(instance).toBeInstanceOf(CacheRateLimitStore);
    await incr(instance, 'k', 60_000);
    expect(await cache.get('bound:k')).toBe('1');
  });
});

describe('rateLimitExceeded', () => {
  it('is an HTTP 429 error with the whole seconds until the window ends', () => {
    expect(rateLimitExceeded({ ttl: 1_200, statusCode: 429 })).toMatchObject({
      statusCode: 429,
      retryAfter: 2,
    });
    expect(rateLimitExceeded({ ttl: 0 })).toMatchObject({ statusCode: 429, retryAfter: 1 });
  });
});

describe('the shared HTTP server with a rate limiter', () => {
  const typeDefs = parse(`
    extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
    type Query { me: String }
  `);
  const servers: GraphQLHttpServer[] = [];

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it('answers HTTP 429 RATE_LIMITED with retryAfter and retry-after', async () => {
    const server = await createSubgraphServer({
      name: 'limited',
      logger: createLogger('t', { level: 'silent' }),
      typeDefs,
      resolvers: { Query: { me: () => 'x' } },
      plugins: (app) => {
        app.addHook('onRoute', (route) => {
          if (route.url !== '/graphql') return;
          route.onRequest = [
            ...[route.onRequest ?? []].flat(),
            async (_request, reply) => {
              reply.header('retry-after', 7);
              throw rateLimitExceeded({ ttl: 6_500 });
            },
          ];
        });
      },
    });
    servers.push(server);
    const base = await server.listen({ port: 0, host: '127.0.0.1' });
    const response = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query":"{ me }"}',
    });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('7');
    expect(await response.json()).toEqual({
      errors: [
        {
          message: 'Too many requests: retry in 7 s',
          extensions: { code: 'RATE_LIMITED', retryAfter: 7 },
        },
      ],
    });
  });

  it('verifies the token once per request and shows the viewer to plugin hooks and resolvers', async () => {
    const issuer = await createTestTokenIssuer();
    const verify = vi.spyOn(issuer.verifier, 'verify');
    const seen: Array<string | undefined> = [];
    const server = await createSubgraphServer<RequestContext>({
      name: 'viewer',
      logger: createLogger('t', { level: 'silent' }),
      typeDefs,
      resolvers: {
        Query: { me: (_: unknown, __: unknown, ctx: RequestContext) => ctx.viewer?.userId ?? null },
      },
      auth: issuer.verifier,
      plugins: (app) => {
        app.addHook('onRoute', (route) => {
          if (route.url !== '/graphql') return;
          route.onRequest = [
            ...[route.onRequest ?? []].flat(),
            async (request) => {
              seen.push(verifiedViewer(request)?.userId);
            },
          ];
        });
      },
    });
    servers.push(server);
    const base = await server.listen({ port: 0, host: '127.0.0.1' });
    const ask = (authorization?: string) =>
      fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: '{"query":"{ me }"}',
      });

    const signedIn = await ask(`Bearer ${await issuer.token('user-1')}`);
    expect(await signedIn.json()).toEqual({ data: { me: 'user-1' } });
    expect(verify).toHaveBeenCalledTimes(1);

    const anonymous = await ask();
    expect(await anonymous.json()).toEqual({ data: { me: null } });
    expect(verify).toHaveBeenCalledTimes(1);

    const bad = await ask(`Bearer ${(await issuer.token('user-1')).slice(0, -4)}AAAA`);
    expect(bad.status).toBe(401);
    expect(
      ((await bad.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]?.extensions.code,
    ).toBe('UNAUTHENTICATED');
    expect(verify).toHaveBeenCalledTimes(2);
    expect(seen).toEqual(['user-1', undefined, undefined]);
  });
});

// The same store on Redis: counts shared by every client of the same Redis (what several gateways do).
await describeInfra(
  'CacheRateLimitStore on Redis',
  { envVar: 'REDIS_URL', defaultUrl: 'redis://127.0.0.1:6379' },
  (url) => {
    const prefix = `rate-limit-test:${randomUUID()}:`;
    let first: Cache;
    let second: Cache;

    beforeAll(async () => {
      first = await createRedisCache({ url, keyPrefix: prefix });
      second = await createRedisCache({ url, keyPrefix: prefix });
    });

    afterAll(async () => {
      await first?.delete('ratelimit:ip:shared');
      await first?.close();
      await second?.close();
    });

    it('shares one count between stores on different connections', async () => {
      const a = new (cacheRateLimitStore({ cache: first }))();
      const b = new (cacheRateLimitStore({ cache: second }))();
      expect((await incr(a, 'ip:shared', 10_000)).current).toBe(1);
      expect((await incr(b, 'ip:shared', 10_000)).current).toBe(2);
      const third = await incr(a, 'ip:shared', 10_000);
      expect(third.current).toBe(3);
      expect(third.ttl).toBeGreaterThan(9_000);
      expect(third.ttl).toBeLessThanOrEqual(10_000);
    });
  },
);
