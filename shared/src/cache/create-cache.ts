import type { Logger } from '../log.js';
import type { Cache } from './cache.js';
import { createMemoryCache } from './memory.js';
import { createRedisCache } from './redis.js';

export interface CreateCacheOptions {
  /** Redis URL (`REDIS_URL`); without it a bounded in-process LRU is used. */
  redisUrl?: string;
  /** Key prefix for Redis (default `aiva:`). */
  keyPrefix?: string;
  /** Entry limit of the in-memory cache (default 10,000). */
  maxEntries?: number;
  logger?: Logger;
}

/** The cache for a service: Redis when `redisUrl` is given, else a per-process in-memory LRU. */
export async function createCache(options: CreateCacheOptions = {}): Promise<Cache> {
  if (options.redisUrl) {
    return createRedisCache({ url: options.redisUrl, keyPrefix: options.keyPrefix, logger: options.logger });
  }
  options.logger?.warn('REDIS_URL is not set: using an in-process cache (not shared between instances)');
  return createMemoryCache({ maxEntries: options.maxEntries });
}
