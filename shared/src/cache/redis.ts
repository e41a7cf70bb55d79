import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import type { Logger } from '../log.js';
import type { Cache } from './cache.js';
import { ttlToMs, windowToMs } from './memory.js';

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
const INCREMENT_SHA = createHash('sha1').update(INCREMENT_SCRIPT).digest('hex');

type RedisClient = ReturnType<typeof createClient>;

/** Logs a connection problem once per outage (the client retries every second and would flood the log). */
function watchConnection(client: RedisClient, logger: Logger | undefined): void {
  let down = false;
  client.on('error', (error: unknown) => {
    // Without an 'error' listener node-redis would crash the process on a connection error.
    if (down) return;
    down = true;
    logger?.warn(
      { err: error instanceof Error ? error.message : String(error) },
      'redis connection error; reconnecting',
    );
  });
  client.on('ready', () => {
    if (down) logger?.info('redis connection restored');
    down = false;
  });
}

/** Connects, or gives up after `timeoutMs` (node-redis itself would keep retrying forever). */
async function connectWithTimeout(client: RedisClient, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([client.connect(), timeout]);
  } catch (error) {
    client.destroy();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** The Redis cache adapter (node-redis v5). Commands fail fast while disconnected instead of queueing. */
export async function createRedisCache(options: RedisCacheOptions): Promise<Cache> {
  const prefix = options.keyPrefix ?? 'aiva:';
  const logger = options.logger?.child({ component: 'cache' });
  const client = createClient({
    url: options.url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: options.connectTimeoutMs ?? 5_000,
      reconnectStrategy: (retries) => Math.min(retries * 200, 2_000),
    },
  });
  watchConnection(client, logger);
  await connectWithTimeout(client, options.connectTimeoutMs ?? 5_000);
  const k = (key: string) => prefix + key;

  async function runIncrement(key: string, windowMs: number): Promise<unknown> {
    const args = { keys: [k(key)], arguments: [String(windowMs)] };
    try {
      return await client.evalSha(INCREMENT_SHA, args);
    } catch (error) {
      // First use on this server (or after SCRIPT FLUSH): send the script itself, which also caches it.
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
      return client.eval(INCREMENT_SCRIPT, args);
    }
  }

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
      const [value, ttlMs] = (await runIncrement(key, windowToMs(ttlSeconds))) as [number, number];
      return { value: Number(value), ttlMs: Math.max(0, Number(ttlMs)) };
    },
    async ping() {
      await client.ping();
    },
    async close() {
      if (!client.isOpen) return;
      // close() lets queued commands finish; while reconnecting there is nothing to wait for.
      if (client.isReady) await client.close();
      else client.destroy();
    },
  };
}
