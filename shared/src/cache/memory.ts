import type { Cache } from './cache.js';

/** The byte bound of a memory cache when none is given. */
export const DEFAULT_MEMORY_CACHE_MAX_BYTES = 64 * 1024 * 1024;

export interface MemoryCacheOptions {
  /** Entries kept before the least recently used is evicted (default 10,000). */
  maxEntries?: number;
  /**
   * Bytes of keys and values (UTF-8) kept before the least recently used entries are evicted (default 64 MiB).
   * A single entry larger than this is not kept at all.
   */
  maxBytes?: number;
  /** The clock, for tests (default Date.now). */
  now?: () => number;
}

interface Entry {
  value: string;
  /** Epoch ms; undefined keeps the entry until evicted or deleted. */
  expiresAt: number | undefined;
  /** What the entry counts against `maxBytes`. */
  bytes: number;
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
 * A bounded in-process LRU cache with TTLs, for single-process setups and tests: at most `maxEntries` entries and
 * `maxBytes` bytes. A Map keeps insertion order, so re-inserting on access keeps the least recently used entry
 * first. Expired entries are dropped lazily.
 */
export function createMemoryCache(options: MemoryCacheOptions = {}): Cache {
  const maxEntries = options.maxEntries ?? 10_000;
  const maxBytes = options.maxBytes ?? DEFAULT_MEMORY_CACHE_MAX_BYTES;
  const now = options.now ?? Date.now;
  if (!Number.isInteger(maxEntries) || maxEntries < 1)
    throw new RangeError('maxEntries must be an integer >= 1');
  if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new RangeError('maxBytes must be an integer >= 1');
  const entries = new Map<string, Entry>();
  let bytes = 0;
  let closed = false;

  const assertOpen = () => {
    if (closed) throw new Error('The cache is closed');
  };

  function remove(key: string): boolean {
    const entry = entries.get(key);
    if (!entry) return false;
    entries.delete(key);
    bytes -= entry.bytes;
    return true;
  }

  /** The live entry for a key, marked as recently used; expired entries are removed. */
  function live(key: string): Entry | undefined {
    const entry = entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= now()) {
      remove(key);
      return undefined;
    }
    entries.delete(key);
    entries.set(key, entry);
    return entry;
  }

  function store(key: string, value: string, expiresAt: number | undefined): void {
    remove(key);
    const size = Buffer.byteLength(key) + Buffer.byteLength(value);
    // Larger than the whole cache: it would evict everything and then itself.
    if (size > maxBytes) return;
    entries.set(key, { value, expiresAt, bytes: size });
    bytes += size;
    while (entries.size > maxEntries || bytes > maxBytes) {
      const oldest = entries.keys().next().value;
      if (oldest === undefined) break;
      remove(oldest);
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
      store(key, value, expiry(ttlSeconds));
    },
    async setIfAbsent(key, value, ttlSeconds) {
      assertOpen();
      if (live(key)) return false;
      store(key, value, expiry(ttlSeconds));
      return true;
    },
    async delete(key) {
      assertOpen();
      const existed = live(key) !== undefined;
      remove(key);
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
      store(key, String(value), expiresAt);
      return { value, ttlMs: Math.max(0, expiresAt - now()) };
    },
    async ping() {
      assertOpen();
    },
    async close() {
      closed = true;
      entries.clear();
      bytes = 0;
    },
  };
}
