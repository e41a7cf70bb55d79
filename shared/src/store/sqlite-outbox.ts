import type { AivaEvent } from '../events/event.js';
import type { OutboxStore } from '../events/outbox.js';
import type { SqliteDatabaseLike } from './sqlite-migrations.js';

/**
 * The outbox table of a SQLite store; put it in one of the store's migrations (`migrateSqlite`). `seq` orders
 * events; `id` is the event id (unique: an event is stored once).
 */
export const SQLITE_OUTBOX_SCHEMA = `
  CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    payload      TEXT NOT NULL CHECK (json_valid(payload)),
    created_at   TEXT NOT NULL,
    published_at TEXT NULL
  );
  CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;
  CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;
`;

/**
 * Kept for compatibility: published rows are no longer retained (see `createSqliteOutbox`), so these options have
 * no effect.
 */
export interface SqliteOutboxOptions {
  /** @deprecated Published rows are deleted once published; nothing is retained. */
  retentionMs?: number;
  /** @deprecated No periodic cleanup runs any more. */
  cleanupIntervalMs?: number;
}

/** The outbox of a SQLite store: `write` inside the store's own transactions, the rest for the relay. */
export interface SqliteOutbox extends OutboxStore {
  /** Stores one event; call it inside the transaction that makes the state change the event describes. */
  write(event: AivaEvent): void;
}

/**
 * The outbox over the `outbox` table of `SQLITE_OUTBOX_SCHEMA`. Create it after the migrations ran (it
 * prepares its statements at once).
 *
 * A row is deleted as soon as the relay marked its event published: the event lives on in the bus, and the store
 * keeps no copy of its data (events may carry sealed secrets and personal data; nothing needs them here once
 * published). Rows published before this rule (kept with `published_at` set) are deleted on the first
 * `markPublished`.
 */
export function createSqliteOutbox(db: SqliteDatabaseLike, _options: SqliteOutboxOptions = {}): SqliteOutbox {
  const insertEvent = db.prepare(
    'INSERT INTO outbox (id, type, payload, created_at) VALUES (@id, @type, @payload, @created_at)',
  );
  const pending = db.prepare(
    'SELECT payload FROM outbox WHERE published_at IS NULL ORDER BY seq ASC LIMIT ?',
  );
  const deletePublished = db.prepare(
    'DELETE FROM outbox WHERE published_at IS NULL AND id IN (SELECT value FROM json_each(?))',
  );
  const deleteLegacyPublished = db.prepare('DELETE FROM outbox WHERE published_at IS NOT NULL');
  let legacyPurged = false;

  return {
    write(event) {
      insertEvent.run({
        id: event.id,
        type: event.type,
        payload: JSON.stringify(event),
        created_at: new Date().toISOString(),
      });
    },

    async pendingEvents(limit) {
      const n = Math.max(0, Math.floor(limit));
      if (n === 0) return [];
      return (pending.all(n) as Array<{ payload: string }>).map(
        (row) => JSON.parse(row.payload) as AivaEvent,
      );
    },

    async markPublished(ids) {
      if (ids.length === 0) return;
      db.transaction(() => {
        deletePublished.run(JSON.stringify(ids));
        if (!legacyPurged) deleteLegacyPublished.run();
      }).immediate();
      legacyPurged = true;
    },
  };
}
