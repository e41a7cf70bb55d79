import type { DependencyReporter } from '../server/dependencies.js';
import type { Cache } from './cache.js';

/**
 * Apollo Server's KeyValueCache (persisted queries, response caches) backed by the cache port, so automatic
 * persisted queries live in Redis when REDIS_URL is set and are shared by every gateway instance.
 *
 * It fails open: a cache that cannot be read is a miss (an APQ client then sends the query text again), one that
 * cannot be written forgets the entry; each such request is counted on `health` (`persisted_queries`), never
 * logged one by one (the cache's connection logs its state changes).
 */
export class ApolloCacheAdapter {
  constructor(
    private readonly cache: Cache,
    private readonly prefix = 'apollo:',
    private readonly health?: DependencyReporter,
  ) {}

  async get(key: string): Promise<string | undefined> {
    try {
      return (await this.cache.get(this.prefix + key)) ?? undefined;
    } catch {
      this.health?.degraded('persisted_queries');
      return undefined;
    }
  }

  async set(key: string, value: string, options?: { ttl?: number | null }): Promise<void> {
    const ttl = options?.ttl ?? undefined;
    try {
      await this.cache.set(this.prefix + key, value, ttl && ttl > 0 ? ttl : undefined);
    } catch {
      this.health?.degraded('persisted_queries');
    }
  }

  async delete(key: string): Promise<boolean> {
    try {
      return await this.cache.delete(this.prefix + key);
    } catch {
      this.health?.degraded('persisted_queries');
      return false;
    }
  }
}
