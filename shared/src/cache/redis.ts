import type { Logger } from '../log.js';
import type { Cache } from './cache.js';
import { ttlToMs, windowToMs } from './memory.js';
import { closeRedis, connectRedis, createScript } from './redis-client.js';

export interface RedisCacheOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://`. May carry credentials; it is never logged. */
  url: string;
  /** Prepended to every key, so services (and test runs) sharing a Redis do not collide (default `aiva:`). */
  keyPrefix?: string;
  logger?: Logger;
  /** How long the first connection may take before createRedisCache gives up (default 5000). */
  connectTimeoutMs?: number;
}

/**
 * INCR and start the window when the key has no expiry yet (first increment), atomically; returns the new
 * value and the remaining window in ms. A script rather than PEXPIRE NX, which needs Redis 7.
 */
const INCREMENT_SCRIPT = `
local value = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {value, ttl}
`;

/** The Redis cache adapter (node-redis v5). Commands fail fast while disconnected instead of queueing. */
export async function createRedisCache(options: RedisCacheOptions): Promise<Cache> {
  const prefix = options.keyPrefix ?? 'aiva:';
  const client = await connectRedis({
    url: options.url,
    logger: options.logger?.child({ component: 'cache' }),
    connectTimeoutMs: options.connectTimeoutMs,
  });
  const k = (key: string) => prefix + key;
  const runIncrement = createScript(client, INCREMENT_SCRIPT);

  return {
    kind: 'redis',
    async get(key) {
      const value = await client.get(k(key));
      return value === null ? null : String(value);
    },
    async set(key, value, ttlSeconds) {
      const ms = ttlToMs(ttlSeconds);
      await client.set(
        k(key),
        value,
        ms === undefined ? undefined : { expiration: { type: 'PX', value: ms } },
      );
    },
    async setIfAbsent(key, value, ttlSeconds) {
      const ms = ttlToMs(ttlSeconds);
      const reply = await client.set(k(key), value, {
        condition: 'NX',
        ...(ms === undefined ? {} : { expiration: { type: 'PX', value: ms } as const }),
      });
      return reply === 'OK';
    },
    async delete(key) {
      return (await client.del(k(key))) > 0;
    },
    async increment(key, ttlSeconds) {
      const reply = await runIncrement([k(key)], [String(windowToMs(ttlSeconds))]);
      const [value, ttlMs] = reply as [number, number];
      return { value: Number(value), ttlMs: Math.max(0, Number(ttlMs)) };
    },
    async ping() {
      await client.ping();
    },
    close: () => closeRedis(client),
  };
}
