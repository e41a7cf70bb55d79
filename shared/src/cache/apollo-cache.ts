import type { Cache } from './cache.js';

/**
 * Apollo Server's KeyValueCache (persisted queries, response caches) backed by the cache port, so automatic
 * persisted queries live in Redis when REDIS_URL is set and are shared by every gateway instance.
 */
export class ApolloCacheAdapter {
  constructor(
    private readonly cache: Cache,
    private readonly prefix = 'apollo:',
  ) {}

  get(key: string): Promise<string | undefined> {
    return this.cache.get(this.prefix + key).then((value) => value ?? undefined);
  }

  set(key: string, value: string, options?: { ttl?: number | null }): Promise<void> {
    const ttl = options?.ttl ?? undefined;
    return this.cache.set(this.prefix + key, value, ttl && ttl > 0 ? ttl : undefined);
  }

  async delete(key: string): Promise<boolean> {
    return this.cache.delete(this.prefix + key);
  }
}
