import type { Cache } from './cache.js';

export interface MemoryCacheOptions {
  /** Entries kept before the least recently used is evicted (default 10,000). */
  maxEntries?: number;
  /** The clock, for tests (default Date.now). */
  now?: () => number;
}

interface Entry {
  value: string;
  /** Epoch ms; undefined keeps the entry until evicted or deleted. */
  expiresAt: number | undefined;
}

/** Milliseconds for an optional TTL in seconds; undefined when the key should not expire. */
export function ttlToMs(ttlSeconds: number | undefined): number | undefined {
  if (ttlSeconds === undefined) return undefined;
  if (!Number.isFinite(ttlSeconds) || ttlSeconds < 0)
    throw new RangeError('ttlSeconds must be a number >= 0');
  // 0 means "no expiry"; fractions are kept to the millisecond (at least 1 ms).
  return ttlSeconds === 0 ? undefined : Math.max(1, Math.round(ttlSeconds * 1000));
}

/** The TTL of an increment window in ms; a window must expire. */
export function windowToMs(ttlSeconds: number): number {
  const ms = ttlToMs(ttlSeconds);
  if (ms === undefined) throw new RangeError('increment needs ttlSeconds > 0');
  return ms;
}

/**
 * A bounded in-process LRU cache with TTLs, for single-process setups and tests. A Map keeps insertion order,
 * so re-inserting on access keeps the least recently used entry first. Expired entries are dropped lazily.
 */
export function createMemoryCache(options: MemoryCacheOptions = {}): Cache {
  const maxEntries = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  if (!Number.isInteger(maxEntries) || maxEntries < 1)
    throw new RangeError('maxEntries must be an integer >= 1');
  const entries = new Map<string, Entry>();
  let closed = false;

  const assertOpen = () => {
    if (closed) throw new Error('The cache is closed');
  };

  /** The live entry for a key, marked as recently used; expired entries are removed. */
  function live(key: string): Entry | undefined {
    const entry = entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= now()) {
      entries.delete(key);
      return undefined;
    }
    entries.delete(key);
    entries.set(key, entry);
    return entry;
  }

  function store(key: string, entry: Entry): void {
    entries.delete(key);
    entries.set(key, entry);
    while (entries.size > maxEntries) {
      const oldest = entries.keys().next().value;
      if (oldest === undefined) break;
      entries.delete(oldest);
    }
  }

  const expiry = (ttlSeconds: number | undefined) => {
    const ms = ttlToMs(ttlSeconds);
    return ms === undefined ? undefined : now() + ms;
  };

  return {
    kind: 'memory',
    async get(key) {
      assertOpen();
      return live(key)?.value ?? null;
    },
    async set(key, value, ttlSeconds) {
      assertOpen();
      store(key, { value, expiresAt: expiry(ttlSeconds) });
    },
    async setIfAbsent(key, value, ttlSeconds) {
      assertOpen();
      if (live(key)) return false;
      store(key, { value, expiresAt: expiry(ttlSeconds) });
      return true;
    },
    async delete(key) {
      assertOpen();
      const existed = live(key) !== undefined;
      entries.delete(key);
      return existed;
    },
    async increment(key, ttlSeconds) {
      assertOpen();
      const windowMs = windowToMs(ttlSeconds);
      const entry = live(key);
      const current = entry ? Number(entry.value) : 0;
      if (!Number.isSafeInteger(current)) throw new Error(`Cache value at ${key} is not an integer`);
      // Like Redis INCR + PEXPIRE NX: the first increment (or a key without expiry) starts the window.
      const expiresAt = entry?.expiresAt ?? now() + windowMs;
      const value = current + 1;
      store(key, { value: String(value), expiresAt });
      return { value, ttlMs: Math.max(0, expiresAt - now()) };
    },
    async ping() {
      assertOpen();
    },
    async close() {
      closed = true;
      entries.clear();
    },
  };
}
