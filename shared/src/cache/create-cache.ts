import type { Logger } from '../log.js';
import type { DependencyReporter } from '../server/dependencies.js';
import type { Cache } from './cache.js';
import { createMemoryCache } from './memory.js';
import { createRedisCache } from './redis.js';
import { createSqliteCache } from './sqlite.js';

export interface CreateCacheOptions {
  /** Redis URL (`REDIS_URL`); without it the SQLite cache (`file`) or a bounded in-process LRU is used. */
  redisUrl?: string;
  /** Without `redisUrl`: a SQLite file shared by the services' processes on this machine. */
  file?: string;
  /** Key prefix for Redis and SQLite (default `aiva:`). */
  keyPrefix?: string;
  /** Entry limit of the SQLite cache (per prefix; default 100,000) or in-memory cache (default 10,000). */
  maxEntries?: number;
  logger?: Logger;
  /** Redis deadlines (REDIS_COMMAND_TIMEOUT_MS, REDIS_CONNECT_TIMEOUT_MS; see `redisTimeoutsOf`). */
  redis?: { commandTimeoutMs?: number; connectTimeoutMs?: number };
  /**
   * Where the Redis connection's state changes go (a service's dependency monitor); default: logged once per
   * change. Its name is the dependency's (default `cache`).
   */
  health?: DependencyReporter;
}

/**
 * The cache for a service: Redis when `redisUrl` is given, else a SQLite file shared by the processes of this
 * machine when `file` is given, else a per-process in-memory LRU.
 *
 * The cache is a soft dependency: a Redis cache is returned once connected, or after a second at most, and goes
 * on connecting in the background (a service starts while Redis is down and uses it once it answers); until
 * then, and whenever Redis does not answer within its command deadline, its calls fail at once, and its users
 * fail open (see the gateway's rate limits, persisted queries and session revocations).
 */
export async function createCache(options: CreateCacheOptions = {}): Promise<Cache> {
  if (options.redisUrl) {
    return createRedisCache({
      url: options.redisUrl,
      keyPrefix: options.keyPrefix,
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.health ? { health: options.health, name: options.health.dependency } : {}),
      ...options.redis,
      connect: 'background',
    });
  }
  if (options.file) {
    options.logger?.info(
      { file: options.file },
      'REDIS_URL is not set: the cache is a SQLite file (shared between processes on this machine)',
    );
    return createSqliteCache({
      file: options.file,
      keyPrefix: options.keyPrefix,
      maxEntries: options.maxEntries,
    });
  }
  options.logger?.warn('REDIS_URL is not set: using an in-process cache (not shared between instances)');
  return createMemoryCache({ maxEntries: options.maxEntries });
}
