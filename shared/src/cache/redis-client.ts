import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import type { Logger } from '../log.js';
import { closeWithin } from './redis-connection.js';

/** A node-redis v5 client. */
export type RedisClient = ReturnType<typeof createClient>;

export interface ConnectRedisOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://`. May carry credentials; it is never logged. */
  url: string;
  /** Gets the connection warnings (one per outage). */
  logger?: Logger;
  /** How long the first connection may take before giving up (default 5000). */
  connectTimeoutMs?: number;
}

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

/**
 * A connected node-redis client: commands fail fast while disconnected instead of queueing, reconnects back off
 * up to 2 s, connection errors are logged once per outage (and never crash the process), and the first
 * connection gives up after `connectTimeoutMs`. (The orchestrator's registry store uses it; the services'
 * adapters use `createRedisConnection`, which adds command deadlines and connects in the background.)
 */
export async function connectRedis(options: ConnectRedisOptions): Promise<RedisClient> {
  const connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
  const client = createClient({
    url: options.url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: connectTimeoutMs,
      reconnectStrategy: (retries) => Math.min(retries * 200, 2_000),
    },
  });
  watchConnection(client, options.logger);
  await connectWithTimeout(client, connectTimeoutMs);
  return client;
}

/**
 * Closes the client: lets queued commands finish when connected (for at most `timeoutMs`: a Redis that hangs
 * must not hold a shutdown); while reconnecting there is nothing to wait for.
 */
export async function closeRedis(client: RedisClient, timeoutMs = 2_000): Promise<void> {
  await closeWithin(client, timeoutMs);
}

/** Runs a Lua script with these keys and arguments; resolves to its reply. */
export type RedisScript = (keys: string[], args: string[]) => Promise<unknown>;

/**
 * A Lua script run by its SHA1 (EVALSHA); on first use on a server (or after SCRIPT FLUSH) the server answers
 * NOSCRIPT and the script itself is sent (EVAL), which also caches it.
 */
export function createScript(client: RedisClient, source: string): RedisScript {
  const sha = createHash('sha1').update(source).digest('hex');
  return async (keys, args) => {
    try {
      return await client.evalSha(sha, { keys, arguments: args });
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
      return client.eval(source, { keys, arguments: args });
    }
  };
}
