import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Cache } from '../src/cache/cache.js';
import { createCache } from '../src/cache/create-cache.js';
import { createRedisCache } from '../src/cache/redis.js';
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

  it('closes more than once without error', async () => {
    const own = await createRedisCache({ url, keyPrefix: prefix });
    await own.close();
    await expect(own.close()).resolves.toBeUndefined();
  });
});
