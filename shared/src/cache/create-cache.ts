import type { Logger } from '../log.js';
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
}

/**
 * The cache for a service: Redis when `redisUrl` is given, else a SQLite file shared by the processes of this
 * machine when `file` is given, else a per-process in-memory LRU.
 */
export async function createCache(options: CreateCacheOptions = {}): Promise<Cache> {
  if (options.redisUrl) {
    return createRedisCache({ url: options.redisUrl, keyPrefix: options.keyPrefix, logger: options.logger });
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
