import type { Logger } from '../log.js';
import type { DependencyReporter } from '../server/dependencies.js';
import type { Cache } from './cache.js';
import { ttlToMs, windowToMs } from './memory.js';
import { createRedisConnection, DEFAULT_REDIS_CONNECT_TIMEOUT_MS } from './redis-connection.js';

export interface RedisCacheOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://`. May carry credentials; it is never logged. */
  url: string;
  /** Prepended to every key, so services (and test runs) sharing a Redis do not collide (default `aiva:`). */
  keyPrefix?: string;
  logger?: Logger;
  /** Deadline of opening a connection (TCP and handshake), in ms (default 5000). */
  connectTimeoutMs?: number;
  /** Deadline of one command, in ms (default 1000): past it the command fails and the connection is replaced. */
  commandTimeoutMs?: number;
  /**
   * `wait` (default): resolve once connected, reject after `connectTimeoutMs` ("Redis did not answer within …").
   * `background`: resolve once connected or after at most a second, and go on connecting in the background (a
   * soft dependency: a service starts without Redis; its commands fail at once until Redis answers).
   */
  connect?: 'wait' | 'background';
  /** Where the connection's state changes go (default: logged once per change). */
  health?: DependencyReporter;
  /** The dependency name in logs and metrics (default `cache`). */
  name?: string;
}

/** How long a cache connecting in the background waits for Redis at start before going on without it. */
const BACKGROUND_START_WAIT_MS = 1_000;

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

/**
 * The Redis cache adapter (node-redis v5, through `createRedisConnection`): every command has a deadline, and
 * commands fail at once while Redis is not connected, so a cache user that fails open never waits long.
 */
export async function createRedisCache(options: RedisCacheOptions): Promise<Cache> {
  const prefix = options.keyPrefix ?? 'aiva:';
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_REDIS_CONNECT_TIMEOUT_MS;
  const connection = createRedisConnection({
    url: options.url,
    name: options.name ?? 'cache',
    ...(options.logger ? { logger: options.logger.child({ component: options.name ?? 'cache' }) } : {}),
    ...(options.health ? { health: options.health } : {}),
    connectTimeoutMs,
    ...(options.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: options.commandTimeoutMs }),
  });
  if ((options.connect ?? 'wait') === 'wait') {
    try {
      await connection.waitUntilUp(connectTimeoutMs);
    } catch (error) {
      await connection.close();
      throw error;
    }
  } else {
    // A Redis that answers is connected before the service serves; one that does not costs at most a second.
    await connection.waitUntilUp(Math.min(connectTimeoutMs, BACKGROUND_START_WAIT_MS)).catch(() => undefined);
  }
  const k = (key: string) => prefix + key;
  const runIncrement = connection.script(INCREMENT_SCRIPT);

  return {
    kind: 'redis',
    async get(key) {
      const value = await connection.run((client) => client.get(k(key)));
      return value === null ? null : String(value);
    },
    async set(key, value, ttlSeconds) {
      const ms = ttlToMs(ttlSeconds);
      await connection.run((client) =>
        client.set(k(key), value, ms === undefined ? undefined : { expiration: { type: 'PX', value: ms } }),
      );
    },
    async setIfAbsent(key, value, ttlSeconds) {
      const ms = ttlToMs(ttlSeconds);
      const reply = await connection.run((client) =>
        client.set(k(key), value, {
          condition: 'NX',
          ...(ms === undefined ? {} : { expiration: { type: 'PX', value: ms } as const }),
        }),
      );
      return reply === 'OK';
    },
    async delete(key) {
      return (await connection.run((client) => client.del(k(key)))) > 0;
    },
    async increment(key, ttlSeconds) {
      const reply = await runIncrement([k(key)], [String(windowToMs(ttlSeconds))]);
      const [value, ttlMs] = reply as [number, number];
      return { value: Number(value), ttlMs: Math.max(0, Number(ttlMs)) };
    },
    async ping() {
      await connection.run((client) => client.ping());
    },
    close: () => connection.close(),
  };
}
