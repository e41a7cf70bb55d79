import { randomUUID } from 'node:crypto';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApolloCacheAdapter } from '../src/cache/apollo-cache.js';
import type { Cache } from '../src/cache/cache.js';
import { createCache } from '../src/cache/create-cache.js';
import { createRedisCache } from '../src/cache/redis.js';
import { createRedisConnection, RedisUnavailableError } from '../src/cache/redis-connection.js';
import { createDependencyMonitor } from '../src/server/dependencies.js';
import { CacheRateLimitStore } from '../src/server/rate-limit-store.js';
import { cacheContract, describeInfra } from '../src/testing/index.js';

// Needs Redis (REDIS_URL, default redis://127.0.0.1:6379). Keys get a prefix unique to the run.
await describeInfra('Redis cache', { envVar: 'REDIS_URL', defaultUrl: 'redis://127.0.0.1:6379' }, (url) => {
  cacheContract('redis', (keyPrefix) => createRedisCache({ url, keyPrefix }));

  let cache: Cache;
  const prefix = `redis-test:${randomUUID()}:`;

  beforeAll(async () => {
    cache = await createCache({ redisUrl: url, keyPrefix: prefix });
  });

  afterAll(async () => {
    await cache?.delete('script');
    await cache?.close();
  });

  it('createCache with a URL gives a Redis cache', () => {
    expect(cache.kind).toBe('redis');
  });

  it('keeps a fractional TTL to the millisecond', async () => {
    const { ttlMs } = await cache.increment('script', 1.5);
    expect(ttlMs).toBeGreaterThan(1_000);
    expect(ttlMs).toBeLessThanOrEqual(1_500);
  });

  it('gives up connecting to a server that is not there, without crashing', async () => {
    const started = Date.now();
    await expect(createRedisCache({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 300 })).rejects.toThrow(
      /did not answer|ECONNREFUSED/,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('turns a connection lost under a command into RedisUnavailableError, and reports the dependency down', async () => {
    // Every state report, in order: the connection comes back by itself right after, so its last state is `up`.
    const reports: string[] = [];
    const connection = createRedisConnection({
      url,
      name: 'broken',
      commandTimeoutMs: 5_000,
      health: {
        dependency: 'broken',
        up: () => reports.push('up'),
        down: () => reports.push('down'),
        degraded: () => undefined,
      },
    });
    const other = createRedisConnection({ url, name: 'killer' });
    try {
      await connection.waitUntilUp(5_000);
      await other.waitUntilUp(5_000);
      const id = await connection.run((client) => client.sendCommand(['CLIENT', 'ID']));
      // A command in flight (blocked on an empty list) when the server drops the connection.
      const blocked = connection
        .run((client) => client.sendCommand(['BLPOP', `${prefix}never`, '4']))
        .then(
          () => undefined,
          (failure: unknown) => failure,
        );
      await new Promise((resolve) => setTimeout(resolve, 100));
      await other.run((client) => client.sendCommand(['CLIENT', 'KILL', 'ID', String(id)]));
      const error = await blocked;
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect(reports).toContain('down');
    } finally {
      await connection.close();
      await other.close();
    }
  });

  it('closes more than once without error', async () => {
    const own = await createRedisCache({ url, keyPrefix: prefix });
    await own.close();
    await expect(own.close()).resolves.toBeUndefined();
  });
});

// A Redis that accepts connections and never answers: no real Redis needed.
describe('Redis cache against a server that never answers', () => {
  let silent: Server;
  let url = '';
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    url = `redis://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('starts in the background, and every call fails within the command deadline', async () => {
    const monitor = createDependencyMonitor();
    const cache = await createCache({
      redisUrl: url,
      redis: { commandTimeoutMs: 200, connectTimeoutMs: 300 },
      health: monitor.reporter('cache'),
    });
    try {
      for (let i = 0; i < 3; i++) {
        // Ended by the command deadline (`timeout`) or refused at once while no connection is up (`offline`).
        const failure = cache.get('anything');
        await expect(failure).rejects.toBeInstanceOf(RedisUnavailableError);
        await expect(failure).rejects.toMatchObject({ reason: expect.stringMatching(/^(timeout|offline)$/) });
      }
      expect(monitor.states()).toEqual({ cache: 'down' });
    } finally {
      await cache.close();
    }
  });

  it('lets its users fail open: persisted queries miss, rate limits let the request through, counted', async () => {
    const monitor = createDependencyMonitor();
    const health = monitor.reporter('cache');
    const cache = await createCache({
      redisUrl: url,
      redis: { commandTimeoutMs: 200, connectTimeoutMs: 300 },
      health,
    });
    try {
      const apq = new ApolloCacheAdapter(cache, 'apq:', health);
      expect(await apq.get('hash')).toBeUndefined();
      await apq.set('hash', 'query');
      const errors: unknown[] = [];
      const store = new CacheRateLimitStore({ cache, onError: () => health.degraded('rate_limit') });
      await new Promise<void>((resolve) =>
        store.incr(
          'client',
          (error) => {
            errors.push(error);
            resolve();
          },
          10_000,
        ),
      );
      expect(errors[0]).toBeInstanceOf(Error);
      expect(monitor.degradedCount('cache', 'persisted_queries')).toBe(2);
      expect(monitor.degradedCount('cache', 'rate_limit')).toBe(1);
    } finally {
      await cache.close();
    }
  });
});
