/**
 * The cache port: string values with optional TTL, plus an atomic counter for rate limits.
 * Adapters: Redis (`REDIS_URL`), a SQLite file shared by the processes of one machine, and a bounded
 * in-memory LRU.
 */
export interface Cache {
  readonly kind: 'redis' | 'sqlite' | 'memory';
  get(key: string): Promise<string | null>;
  /** ttlSeconds > 0 expires the key; omitted keeps it until evicted or deleted. */
  set(key: string, value: string, ttlSeconds?: number): Promise<void>;
  /** Sets only when absent; true when it was set. */
  setIfAbsent(key: string, value: string, ttlSeconds?: number): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  /** Atomically adds 1 and returns the new value; the first increment starts a window of `ttlSeconds`. */
  increment(key: string, ttlSeconds: number): Promise<{ value: number; ttlMs: number }>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
