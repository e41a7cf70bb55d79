import {
  type Once,
  PROCESSED_EVENTS_PRUNE_INTERVAL_MS,
  PROCESSED_EVENTS_RETENTION_MS,
  type ProcessedEventsOptions,
} from '../events/processed-events.js';
import type { SqliteDatabaseLike } from './sqlite-migrations.js';

/**
 * The table of event ids a store's consumers processed; put it in one of the store's migrations
 * (`migrateSqlite`). Timestamps are ISO-8601 UTC strings.
 */
export const SQLITE_PROCESSED_EVENTS_SCHEMA = `
  CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (consumer, event_id)
  ) STRICT;
  CREATE INDEX processed_events_at ON processed_events (processed_at);
`;

/** Idempotent consumers over a SQLite store: the effect and the record of its event id commit together. */
export interface SqliteProcessedEvents {
  /**
   * Runs `effect` and records that `consumer` processed `eventId`, in one `BEGIN IMMEDIATE` transaction, unless
   * the id is recorded already: then nothing runs and the result is `{ duplicate: true }`. `effect` must be
   * synchronous and write through this database connection (better-sqlite3 transactions are synchronous), so its
   * writes and the record commit together; an effect that throws rolls both back (the bus redelivers the event).
   * Called inside another transaction of the connection it joins it (a savepoint).
   */
  runOnce<T>(consumer: string, eventId: string, effect: () => T): Once<T>;
  /** Whether `consumer` processed `eventId` (within the retention). */
  has(consumer: string, eventId: string): boolean;
  /** Deletes ids processed before `before` (default: now minus the retention); returns how many. */
  prune(before?: Date): number;
}

/**
 * Idempotent consumers over the `processed_events` table of `SQLITE_PROCESSED_EVENTS_SCHEMA`. Create it after the
 * migrations ran (it prepares its statements at once). Ids older than the retention (30 days by default) are
 * pruned at most once an hour, inside a `runOnce` transaction.
 */
export function createSqliteProcessedEvents(
  db: SqliteDatabaseLike,
  options: ProcessedEventsOptions = {},
): SqliteProcessedEvents {
  const retentionMs = options.retentionMs ?? PROCESSED_EVENTS_RETENTION_MS;
  const now = options.now ?? (() => new Date());
  const stmt = {
    has: db.prepare('SELECT 1 FROM processed_events WHERE consumer = ? AND event_id = ?'),
    record: db.prepare('INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?, ?, ?)'),
    pruneBefore: db.prepare('DELETE FROM processed_events WHERE processed_at < ?'),
  };
  let lastPrune = 0;

  const has = (consumer: string, eventId: string) => stmt.has.get(consumer, eventId) !== undefined;
  const cutoff = (at: Date) => new Date(at.getTime() - retentionMs).toISOString();

  return {
    runOnce<T>(consumer: string, eventId: string, effect: () => T): Once<T> {
      if (!consumer || !eventId) throw new Error('runOnce needs a consumer name and an event id');
      const at = now();
      const prune = at.getTime() - lastPrune >= PROCESSED_EVENTS_PRUNE_INTERVAL_MS;
      const outcome = db
        .transaction((): Once<T> => {
          if (prune) stmt.pruneBefore.run(cutoff(at));
          if (has(consumer, eventId)) return { duplicate: true };
          const result = effect();
          stmt.record.run(consumer, eventId, at.toISOString());
          return { duplicate: false, result };
        })
        .immediate();
      if (prune) lastPrune = at.getTime();
      return outcome;
    },

    has,

    prune(before) {
      return stmt.pruneBefore.run((before ?? new Date(now().getTime() - retentionMs)).toISOString()).changes;
    },
  };
}
