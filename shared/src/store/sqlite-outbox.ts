import type { AivaEvent } from '../events/event.js';
import type { OutboxStore, QuarantinedEvent } from '../events/outbox.js';
import type { SqliteDatabaseLike } from './sqlite-migrations.js';

/**
 * The outbox table of a SQLite store; put it in one of the store's migrations (`migrateSqlite`), followed by
 * `SQLITE_OUTBOX_RELAY_MIGRATION` in a later one. `seq` orders events; `id` is the event id (unique: an event is
 * stored once).
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
 * The second step of the outbox schema (a migration of its own, after the one holding `SQLITE_OUTBOX_SCHEMA`):
 * failed attempts, the last error and the quarantine mark of each row; and the relay lease (`name` = `relay`,
 * `expires_at` in epoch ms), so that of several relays sharing the file only one publishes at a time.
 */
export const SQLITE_OUTBOX_RELAY_MIGRATION = `
  ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE outbox ADD COLUMN last_error TEXT NULL;
  ALTER TABLE outbox ADD COLUMN quarantined_at TEXT NULL;
  DROP INDEX outbox_pending;
  CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL AND quarantined_at IS NULL;
  CREATE INDEX outbox_quarantined ON outbox (seq) WHERE quarantined_at IS NOT NULL;
  CREATE TABLE outbox_relay_lease (
    name       TEXT PRIMARY KEY NOT NULL,
    owner      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  ) STRICT;
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
  /** The clock (tests). */
  now?: () => Date;
}

/** The outbox of a SQLite store: `write` inside the store's own transactions, the rest for the relay. */
export interface SqliteOutbox extends OutboxStore {
  /**
   * Stores the event (or the events, in order); call it inside the transaction that makes the state change the
   * events describe.
   */
  write(events: AivaEvent | readonly AivaEvent[]): void;
}

/** Errors are kept short in the row (they name ids, types and zod paths, never data). */
const MAX_ERROR_LENGTH = 500;
const LEASE_NAME = 'relay';
const DEFAULT_QUARANTINE_LIST = 100;

interface PayloadRow {
  id: string;
  type: string;
  payload: string;
}

interface QuarantinedRow extends PayloadRow {
  attempts: number;
  last_error: string | null;
  quarantined_at: string;
}

/**
 * The event of a row. The row's `id` wins over the payload's (marking and quarantining go by row id), and a
 * payload that is not an object (a row written by hand, say) becomes an envelope that fails validation: the
 * relay quarantines it instead of stumbling over it.
 */
function eventOf(row: PayloadRow): AivaEvent {
  const value: unknown = JSON.parse(row.payload);
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return { ...(value as AivaEvent), id: row.id };
  }
  return { id: row.id, type: row.type, data: value } as unknown as AivaEvent;
}

/**
 * The outbox over the `outbox` table of `SQLITE_OUTBOX_SCHEMA` + `SQLITE_OUTBOX_RELAY_MIGRATION`. Create it after
 * the migrations ran (it prepares its statements at once).
 *
 * A row is deleted as soon as the relay marked its event published: the event lives on in the bus, and the store
 * keeps no copy of its data (events may carry sealed secrets and personal data; nothing needs them here once
 * published). Rows published before this rule (kept with `published_at` set) are deleted on the first
 * `markPublished`. Quarantined rows stay (with their data) until replayed and published, or discarded.
 */
export function createSqliteOutbox(db: SqliteDatabaseLike, options: SqliteOutboxOptions = {}): SqliteOutbox {
  const now = options.now ?? (() => new Date());
  const insertEvent = db.prepare(
    'INSERT INTO outbox (id, type, payload, created_at) VALUES (@id, @type, @payload, @created_at)',
  );
  const pending = db.prepare(
    'SELECT id, type, payload FROM outbox WHERE published_at IS NULL AND quarantined_at IS NULL ORDER BY seq ASC LIMIT ?',
  );
  const deletePublished = db.prepare(
    'DELETE FROM outbox WHERE published_at IS NULL AND id IN (SELECT value FROM json_each(?))',
  );
  const deleteLegacyPublished = db.prepare('DELETE FROM outbox WHERE published_at IS NOT NULL');
  const recordFailure = db.prepare(
    `UPDATE outbox SET attempts = attempts + 1, last_error = @error,
       quarantined_at = CASE WHEN @permanent = 1 OR attempts + 1 >= @maxAttempts THEN @now ELSE NULL END
     WHERE id = @id AND published_at IS NULL AND quarantined_at IS NULL
     RETURNING attempts, quarantined_at`,
  );
  const quarantined = db.prepare(
    `SELECT id, type, payload, attempts, last_error, quarantined_at FROM outbox
     WHERE quarantined_at IS NOT NULL ORDER BY seq ASC LIMIT ?`,
  );
  const replayAll = db.prepare(
    'UPDATE outbox SET quarantined_at = NULL, attempts = 0 WHERE quarantined_at IS NOT NULL',
  );
  const replaySome = db.prepare(
    `UPDATE outbox SET quarantined_at = NULL, attempts = 0
     WHERE quarantined_at IS NOT NULL AND id IN (SELECT value FROM json_each(?))`,
  );
  const discard = db.prepare(
    'DELETE FROM outbox WHERE quarantined_at IS NOT NULL AND id IN (SELECT value FROM json_each(?))',
  );
  const stats = db.prepare(
    `SELECT count(*) FILTER (WHERE quarantined_at IS NULL) AS pending,
            count(*) FILTER (WHERE quarantined_at IS NOT NULL) AS quarantined
     FROM outbox WHERE published_at IS NULL`,
  );
  // One statement: the check (free, expired, or ours) and the take-over are atomic across processes.
  const acquireLease = db.prepare(
    `INSERT INTO outbox_relay_lease (name, owner, expires_at) VALUES (@name, @owner, @until)
     ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
       WHERE outbox_relay_lease.owner = excluded.owner OR outbox_relay_lease.expires_at <= @now
     RETURNING owner`,
  );
  const releaseLease = db.prepare('DELETE FROM outbox_relay_lease WHERE name = ? AND owner = ?');
  let legacyPurged = false;

  return {
    write(events) {
      for (const event of Array.isArray(events) ? events : [events]) {
        insertEvent.run({
          id: event.id,
          type: event.type,
          payload: JSON.stringify(event),
          created_at: now().toISOString(),
        });
      }
    },

    async pendingEvents(limit) {
      const n = Math.max(0, Math.floor(limit));
      if (n === 0) return [];
      return (pending.all(n) as PayloadRow[]).map(eventOf);
    },

    async markPublished(ids) {
      if (ids.length === 0) return;
      db.transaction(() => {
        deletePublished.run(JSON.stringify(ids));
        if (!legacyPurged) deleteLegacyPublished.run();
      }).immediate();
      legacyPurged = true;
    },

    async recordFailure(id, failure) {
      const row = recordFailure.get({
        id,
        error: failure.error.slice(0, MAX_ERROR_LENGTH),
        permanent: failure.permanent ? 1 : 0,
        maxAttempts: Math.max(1, Math.floor(failure.maxAttempts)),
        now: now().toISOString(),
      }) as { attempts: number; quarantined_at: string | null } | undefined;
      return row
        ? { attempts: row.attempts, quarantined: row.quarantined_at !== null }
        : { attempts: 0, quarantined: false };
    },

    async quarantinedEvents(limit = DEFAULT_QUARANTINE_LIST) {
      const n = Math.max(0, Math.floor(limit));
      if (n === 0) return [];
      return (quarantined.all(n) as QuarantinedRow[]).map(
        (row): QuarantinedEvent => ({
          event: eventOf(row),
          attempts: row.attempts,
          error: row.last_error ?? '',
          quarantinedAt: new Date(row.quarantined_at),
        }),
      );
    },

    async replayQuarantined(ids) {
      if (ids === undefined) return replayAll.run().changes;
      if (ids.length === 0) return 0;
      return replaySome.run(JSON.stringify(ids)).changes;
    },

    async discardQuarantined(ids) {
      if (ids.length === 0) return 0;
      return discard.run(JSON.stringify(ids)).changes;
    },

    async outboxStats() {
      const row = stats.get() as { pending: number | null; quarantined: number | null } | undefined;
      return { pending: row?.pending ?? 0, quarantined: row?.quarantined ?? 0 };
    },

    async acquireRelayLease(owner, leaseMs) {
      const at = now().getTime();
      const taken = db
        .transaction(() =>
          acquireLease.get({ name: LEASE_NAME, owner, until: at + Math.max(1, leaseMs), now: at }),
        )
        .immediate();
      return taken !== undefined;
    },

    async releaseRelayLease(owner) {
      releaseLease.run(LEASE_NAME, owner);
    },
  };
}
