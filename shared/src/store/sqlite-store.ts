// The base of a SQLite store: the database opened and migrated, its lifecycle, writes as `BEGIN IMMEDIATE`
// transactions whose constraint errors become domain errors, and (for stores that publish) the outbox and the
// processed event ids on the same connection, so a write's events and a consumer's record commit with it.
import type { AivaError } from '../errors.js';
import { conflict } from '../errors.js';
import { type OutboxStore, outboxMethods } from '../events/outbox.js';
import type { ProcessedEventsOptions } from '../events/processed-events.js';
import type { SqliteDatabase } from './sqlite-driver.js';
import type { SqliteMigrationOptions } from './sqlite-migrations.js';
import { openMigratedSqlite, type SqliteStoreLifecycle, sqliteStoreLifecycle } from './sqlite-open.js';
import { createSqliteOutbox, type SqliteOutbox, type SqliteOutboxOptions } from './sqlite-outbox.js';
import { createSqliteProcessedEvents, type SqliteProcessedEvents } from './sqlite-processed-events.js';

/** One unique constraint whose violation is a CONFLICT on an input field. */
export interface SqliteUniqueField {
  /**
   * What SQLite names in the error: the column(s) as `table.column` (`UNIQUE constraint failed: users.email`;
   * also the primary key, e.g. `users.id`), or the index name for an index on an expression
   * (`UNIQUE constraint failed: index 'users_email_lower'`).
   */
  target: string;
  /** The CONFLICT message and the `field` extension. */
  message: string;
  field: string;
}

/** Which constraint violations of a store are domain errors; every other error passes unchanged. */
export interface SqliteConstraintMapping {
  /** Checked in order; the first match wins. */
  unique?: readonly SqliteUniqueField[];
  /** The error of a foreign key violation (SQLite does not say which key failed), e.g. a NOT_FOUND. */
  foreignKey?: () => AivaError;
}

const UNIQUE_CODES = new Set(['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY']);

/**
 * Turns a SQLite constraint error into the domain error `mapping` names for it: a unique (or primary key)
 * violation on a listed target into `conflict(message, { field })`, a foreign key violation into
 * `mapping.foreignKey()`. Anything else is returned as is.
 */
export function mapSqliteConstraint(error: unknown, mapping: SqliteConstraintMapping): unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY' && mapping.foreignKey) return mapping.foreignKey();
  if (typeof code !== 'string' || !UNIQUE_CODES.has(code)) return error;
  // "UNIQUE constraint failed: users.email" or "UNIQUE constraint failed: index 'users_email_lower'".
  const detail = /constraint failed: (.+)$/.exec(error.message)?.[1]?.trim();
  if (detail === undefined) return error;
  const index = /^index '(.+)'$/.exec(detail)?.[1];
  const match = mapping.unique?.find((unique) => unique.target === detail || unique.target === index);
  return match ? conflict(match.message, { field: match.field }) : error;
}

export interface SqliteStoreOptions extends SqliteMigrationOptions {
  /** Path of the database file (its directory is created when missing), or `':memory:'`. */
  file: string;
  /** The store's constraint errors that are domain errors (thrown by `transaction` and `guard`). */
  constraints?: SqliteConstraintMapping;
}

/** What a SQLite store is built on (see `openSqliteStore`). */
export interface SqliteStore extends SqliteStoreLifecycle {
  /** The migrated connection: prepare the store's statements on it. */
  readonly db: SqliteDatabase;
  /** `mapSqliteConstraint` with the store's mapping. */
  mapError(error: unknown): unknown;
  /**
   * `fn` as a write: each call runs it in one `BEGIN IMMEDIATE` transaction (taking the write lock up front
   * avoids SQLITE_BUSY on lock upgrade when another connection writes to the file; called inside another
   * transaction it joins it as a savepoint) and throws constraint errors mapped. `fn` is synchronous and writes
   * through `db` (better-sqlite3); a throw rolls every write of the call back.
   */
  transaction<A extends unknown[], T>(fn: (...args: A) => T): (...args: A) => T;
  /** Runs `fn` (a single statement needs no transaction) with constraint errors mapped. */
  guard<T>(fn: () => T): T;
}

/**
 * Opens (creating and migrating when needed: `openMigratedSqlite`) the database of a store that publishes no
 * events. Stores with an outbox use `openSqliteEventStore`.
 */
export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const { file, constraints = {}, ...migration } = options;
  const db = openMigratedSqlite(file, migration);
  const mapError = (error: unknown) => mapSqliteConstraint(error, constraints);
  const guard = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (error) {
      throw mapError(error);
    }
  };
  return {
    db,
    mapError,
    transaction<A extends unknown[], T>(fn: (...args: A) => T) {
      const tx = db.transaction(fn);
      return (...args: A): T => guard(() => tx.immediate(...args) as T);
    },
    guard,
    ...sqliteStoreLifecycle(db),
  };
}

export interface SqliteEventStoreOptions extends SqliteStoreOptions {
  /** Options of the outbox (the clock, in tests). */
  outbox?: SqliteOutboxOptions;
  /** Options of the processed event ids (retention, clock). */
  processedEvents?: ProcessedEventsOptions;
}

/** A SQLite store that writes events (outbox) and consumes them idempotently (processed event ids). */
export interface SqliteEventStore extends SqliteStore {
  /**
   * The outbox: call `outbox.write(events)` inside a `transaction`, so the events commit with the state change
   * they describe (and roll back with it).
   */
  readonly outbox: SqliteOutbox;
  readonly processed: SqliteProcessedEvents;
  /** The relay-facing outbox methods, to spread into the store (`...base.relay`). */
  readonly relay: OutboxStore;
  /**
   * Runs `effect` once per (`consumer`, `eventId`): the effect (its writes and outbox events) and the record of
   * the id commit in one `BEGIN IMMEDIATE` transaction. Returns the effect's result, or `duplicate` (nothing
   * ran) when the id was recorded already. Constraint errors are mapped; a throw writes nothing.
   */
  once<T>(consumer: string, eventId: string, effect: () => T): T | 'duplicate';
}

/**
 * Opens a store that publishes events: `openSqliteStore`, plus the outbox and the processed event ids over the
 * same connection. Its migrations must create `SQLITE_OUTBOX_SCHEMA`, then `SQLITE_OUTBOX_RELAY_MIGRATION` and
 * `SQLITE_PROCESSED_EVENTS_SCHEMA`.
 */
export function openSqliteEventStore(options: SqliteEventStoreOptions): SqliteEventStore {
  const base = openSqliteStore(options);
  let outbox: SqliteOutbox;
  let processed: SqliteProcessedEvents;
  try {
    outbox = createSqliteOutbox(base.db, options.outbox);
    processed = createSqliteProcessedEvents(base.db, options.processedEvents);
  } catch (error) {
    base.db.close(); // a schema without the outbox or processed_events tables
    throw error;
  }
  return {
    ...base,
    outbox,
    processed,
    relay: outboxMethods(outbox),
    once(consumer, eventId, effect) {
      const outcome = base.guard(() => processed.runOnce(consumer, eventId, effect));
      return outcome.duplicate ? 'duplicate' : outcome.result;
    },
  };
}
