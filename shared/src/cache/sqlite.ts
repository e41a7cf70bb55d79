import type { SqliteDatabase } from '../store/sqlite-driver.js';
import { openMigratedSqlite } from '../store/sqlite-open.js';
import type { Cache } from './cache.js';
import { ttlToMs, windowToMs } from './memory.js';

export interface SqliteCacheOptions {
  /** The database file (its directory is created when missing); every process of the machine opens it. */
  file: string;
  /**
   * Keys of this cache live under this prefix (default `aiva:`, like Redis): caches with different prefixes
   * on one file do not see each other's keys, and each has its own `maxEntries`.
   */
  keyPrefix?: string;
  /** Entries kept under the prefix before the least recently written go (default 100,000). */
  maxEntries?: number;
  /** The clock, for tests (default Date.now). */
  now?: () => number;
}

/** The name of this schema in `schema_migrations`: the cache may share its file with other stores. */
export const SQLITE_CACHE_SCHEMA_COMPONENT = 'cache';

/** Expired entries of a prefix are swept at most this often (reads ignore them meanwhile). */
const SWEEP_INTERVAL_MS = 60 * 1000;
/** Rows deleted per statement by the sweep, so it never holds the write lock for long. */
const SWEEP_BATCH = 1_000;

/**
 * Schema migrations, recorded as `cache` in `schema_migrations`. Append new steps, never edit old ones.
 *
 * `cache_entries` holds one row per (scope = key prefix, key); `expires_at` is epoch ms (NULL: no expiry).
 * Every write deletes and re-inserts the row, so rowid order is write order: the index on `scope` (which
 * SQLite keeps as (scope, rowid)) lists a prefix's entries least recently written first, which is the
 * eviction order. `cache_scopes` counts the entries per prefix, kept exact by triggers: the size check is one
 * lookup.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE cache_entries (
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_at INTEGER NULL,
    PRIMARY KEY (scope, key)
  ) STRICT;
  CREATE INDEX cache_entries_write_order ON cache_entries (scope);
  CREATE INDEX cache_entries_expiry ON cache_entries (scope, expires_at) WHERE expires_at IS NOT NULL;

  CREATE TABLE cache_scopes (
    scope   TEXT PRIMARY KEY NOT NULL,
    entries INTEGER NOT NULL
  ) STRICT;
  CREATE TRIGGER cache_entries_count_insert AFTER INSERT ON cache_entries BEGIN
    INSERT INTO cache_scopes (scope, entries) VALUES (NEW.scope, 1)
    ON CONFLICT (scope) DO UPDATE SET entries = entries + 1;
  END;
  CREATE TRIGGER cache_entries_count_delete AFTER DELETE ON cache_entries BEGIN
    UPDATE cache_scopes SET entries = entries - 1 WHERE scope = OLD.scope;
  END;
  `,
];

interface EntryRow {
  value: string;
  expires_at: number | null;
}

/** A counter's stored value, or a clear error: only integers written by `increment` (or `set`) count. */
function parseCounter(key: string, value: string): number {
  const n = /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new Error(`Cache value at ${key} is not an integer`);
  return n;
}

/** The statements and transactions of one prefix over the cache tables. All synchronous. */
function createCacheStore(db: SqliteDatabase, scope: string, maxEntries: number) {
  const stmt = {
    live: db.prepare<[string, string, number], EntryRow>(
      `SELECT value, expires_at FROM cache_entries
       WHERE scope = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)`,
    ),
    remove: db.prepare<[string, string], { expires_at: number | null }>(
      'DELETE FROM cache_entries WHERE scope = ? AND key = ? RETURNING expires_at',
    ),
    insert: db.prepare<[string, string, string, number | null]>(
      'INSERT INTO cache_entries (scope, key, value, expires_at) VALUES (?, ?, ?, ?)',
    ),
    size: db.prepare<[string], number>('SELECT entries FROM cache_scopes WHERE scope = ?').pluck(),
    sweepExpired: db.prepare<[string, number, number]>(
      `DELETE FROM cache_entries WHERE rowid IN (
         SELECT rowid FROM cache_entries WHERE scope = ? AND expires_at <= ? LIMIT ?)`,
    ),
    evictOldest: db.prepare<[string, number]>(
      `DELETE FROM cache_entries WHERE rowid IN (
         SELECT rowid FROM cache_entries WHERE scope = ? ORDER BY rowid LIMIT ?)`,
    ),
    ping: db.prepare('SELECT 1'),
  };
  let lastSweep = 0;

  /** Deletes expired entries of the prefix; returns how many went. */
  function sweep(now: number): number {
    let total = 0;
    for (;;) {
      const removed = stmt.sweepExpired.run(scope, now, SWEEP_BATCH).changes;
      total += removed;
      if (removed < SWEEP_BATCH) return total;
    }
  }

  /** Keeps the prefix within maxEntries: expired entries first, then the least recently written. */
  function enforceBound(now: number): void {
    if (now - lastSweep >= SWEEP_INTERVAL_MS) {
      lastSweep = now;
      sweep(now);
    }
    let excess = (stmt.size.get(scope) ?? 0) - maxEntries;
    if (excess <= 0) return;
    excess -= sweep(now);
    if (excess > 0) stmt.evictOldest.run(scope, excess);
  }

  /**
   * Stores the entry as the most recently written one (delete + insert moves it to the end of the rowids).
   */
  function write(key: string, value: string, expiresAt: number | null, now: number): void {
    stmt.remove.run(scope, key);
    stmt.insert.run(scope, key, value, expiresAt);
    enforceBound(now);
  }

  const set = db.transaction((key: string, value: string, expiresAt: number | null, now: number) =>
    write(key, value, expiresAt, now),
  );

  const setIfAbsent = db.transaction(
    (key: string, value: string, expiresAt: number | null, now: number): boolean => {
      if (stmt.live.get(scope, key, now)) return false;
      write(key, value, expiresAt, now);
      return true;
    },
  );

  // Like Redis INCR + PEXPIRE NX: the first increment (or a key without expiry) starts the window.
  const increment = db.transaction((key: string, windowMs: number, now: number) => {
    const entry = stmt.live.get(scope, key, now);
    const value = (entry ? parseCounter(key, entry.value) : 0) + 1;
    const expiresAt = entry?.expires_at ?? now + windowMs;
    write(key, String(value), expiresAt, now);
    return { value, ttlMs: Math.max(0, expiresAt - now) };
  });

  return {
    get: (key: string, now: number): string | null => stmt.live.get(scope, key, now)?.value ?? null,
    set: (key: string, value: string, expiresAt: number | null, now: number) =>
      set.immediate(key, value, expiresAt, now),
    setIfAbsent: (key: string, value: string, expiresAt: number | null, now: number) =>
      setIfAbsent.immediate(key, value, expiresAt, now),
    /** True when a live entry was deleted (an expired one counts as absent, as in Redis). */
    delete(key: string, now: number): boolean {
      const removed = stmt.remove.get(scope, key);
      return removed !== undefined && (removed.expires_at === null || removed.expires_at > now);
    },
    increment: (key: string, windowMs: number, now: number) => increment.immediate(key, windowMs, now),
    ping: () => stmt.ping.get(),
  };
}

/**
 * A cache in a SQLite file (WAL) shared by every process of the machine: what one service process writes,
 * another reads, without Redis. Same behaviour as the Redis adapter: TTLs to the millisecond, `setIfAbsent`
 * and `increment` atomic across processes (`BEGIN IMMEDIATE`), the first increment starting the window.
 * Bounded per key prefix: beyond `maxEntries`, expired entries go first, then the least recently *written*
 * (not read: a read would have to write to the shared file; writes are what fill it). Statements are prepared
 * once; all calls are synchronous under the hood.
 */
export function createSqliteCache(options: SqliteCacheOptions): Cache {
  const maxEntries = options.maxEntries ?? 100_000;
  const now = options.now ?? Date.now;
  if (!Number.isInteger(maxEntries) || maxEntries < 1)
    throw new RangeError('maxEntries must be an integer >= 1');
  const db = openMigratedSqlite(options.file, {
    component: SQLITE_CACHE_SCHEMA_COMPONENT,
    migrations: MIGRATIONS,
    label: 'cache',
  });
  const store = createCacheStore(db, options.keyPrefix ?? 'aiva:', maxEntries);
  let closed = false;

  const assertOpen = () => {
    if (closed) throw new Error('The cache is closed');
  };

  /** Epoch ms of expiry for an optional TTL in seconds; null when the key should not expire. */
  const expiry = (ttlSeconds: number | undefined, at: number) => {
    const ms = ttlToMs(ttlSeconds);
    return ms === undefined ? null : at + ms;
  };

  return {
    kind: 'sqlite',
    async get(key) {
      assertOpen();
      return store.get(key, now());
    },
    async set(key, value, ttlSeconds) {
      assertOpen();
      const at = now();
      store.set(key, value, expiry(ttlSeconds, at), at);
    },
    async setIfAbsent(key, value, ttlSeconds) {
      assertOpen();
      const at = now();
      return store.setIfAbsent(key, value, expiry(ttlSeconds, at), at);
    },
    async delete(key) {
      assertOpen();
      return store.delete(key, now());
    },
    async increment(key, ttlSeconds) {
      assertOpen();
      const windowMs = windowToMs(ttlSeconds);
      return store.increment(key, windowMs, now());
    },
    async ping() {
      assertOpen();
      store.ping();
    },
    async close() {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}
