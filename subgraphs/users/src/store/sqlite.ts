import {
  type AivaEvent,
  conflict,
  createSqliteOutbox,
  createSqliteProcessedEvents,
  openMigratedSqlite,
  outboxMethods,
  SQLITE_OUTBOX_RELAY_MIGRATION,
  SQLITE_OUTBOX_SCHEMA,
  sqliteStoreLifecycle,
} from '@aiva/shared';
import type { UserPage, UserPatch, UserRecord, UserStore } from './user.store.js';

export interface SqliteUserStoreOptions {
  /** Path of the database file (its directory is created when missing), or `':memory:'`. */
  file: string;
}

/**
 * Schema migrations, applied in order; `PRAGMA user_version` records how many ran. Append new steps, never edit
 * old ones. Timestamps are ISO-8601 UTC strings (`Date#toISOString`), which compare correctly as text.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE users (
    id           TEXT PRIMARY KEY NOT NULL,
    email        TEXT NOT NULL,
    username     TEXT NOT NULL,
    first_name   TEXT NOT NULL,
    last_name    TEXT NOT NULL,
    display_name TEXT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
  ) STRICT;
  CREATE UNIQUE INDEX users_email_nocase ON users (email COLLATE NOCASE);
  CREATE UNIQUE INDEX users_username_nocase ON users (username COLLATE NOCASE);
  ${SQLITE_OUTBOX_SCHEMA}
  `,
  // 2: events this store's consumers processed (idempotency by event id, recorded with the effect); and no copy
  // of published events left in the outbox (they are deleted once published now).
  `
  CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (consumer, event_id)
  ) STRICT;
  CREATE INDEX processed_events_at ON processed_events (processed_at);
  DELETE FROM outbox WHERE published_at IS NOT NULL;
  `,
  // 3: outbox quarantine (attempts, last error) and the relay lease shared by the instances on this file.
  SQLITE_OUTBOX_RELAY_MIGRATION,
];

interface UserRow {
  id: string;
  email: string;
  username: string;
  first_name: string;
  last_name: string;
  display_name: string | null;
  created_at: string;
  updated_at: string;
}

function toRow(user: UserRecord): UserRow {
  return {
    id: user.id,
    email: user.email,
    username: user.username,
    first_name: user.firstName,
    last_name: user.lastName,
    display_name: user.displayName,
    created_at: user.createdAt.toISOString(),
    updated_at: user.updatedAt.toISOString(),
  };
}

function fromRow(row: UserRow): UserRecord {
  return {
    id: row.id,
    email: row.email,
    username: row.username,
    firstName: row.first_name,
    lastName: row.last_name,
    displayName: row.display_name,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

function applyPatch(user: UserRecord, patch: UserPatch, updatedAt: Date): UserRecord {
  const next: UserRecord = { ...user, updatedAt: new Date(updatedAt.getTime()) };
  if (patch.email !== undefined) next.email = patch.email;
  if (patch.username !== undefined) next.username = patch.username;
  if (patch.firstName !== undefined) next.firstName = patch.firstName;
  if (patch.lastName !== undefined) next.lastName = patch.lastName;
  if (patch.displayName !== undefined) next.displayName = patch.displayName;
  return next;
}

/** Turns SQLite unique violations on `users` into CONFLICT errors; anything else is rethrown unchanged. */
function mapUniqueViolation(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  if (code !== 'SQLITE_CONSTRAINT_UNIQUE' && code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') return error;
  // The message names the columns of the violated index: "UNIQUE constraint failed: users.email".
  if (/\busers\.email\b/.test(error.message)) {
    return conflict('A user with this email already exists', { field: 'email' });
  }
  if (/\busers\.username\b/.test(error.message)) {
    return conflict('A user with this username already exists', { field: 'username' });
  }
  if (/\busers\.id\b/.test(error.message))
    return conflict('A user with this id already exists', { field: 'id' });
  return error;
}

/** Opens (creating and migrating when needed) the SQLite user store. Synchronous under the hood. */
export function openSqliteUserStore(options: SqliteUserStoreOptions): UserStore {
  // No `component`: the version stays in `PRAGMA user_version`, where existing users.sqlite files record it.
  const db = openMigratedSqlite(options.file, { migrations: MIGRATIONS, label: 'users database' });

  const outbox = createSqliteOutbox(db);
  // Processed ids are pruned after 30 days (longer than the stream keeps events), inside `runOnce`.
  const processed = createSqliteProcessedEvents(db);
  const { ping, close } = sqliteStoreLifecycle(db);
  const stmt = {
    insertUser: db.prepare<UserRow>(
      `INSERT INTO users (id, email, username, first_name, last_name, display_name, created_at, updated_at)
       VALUES (@id, @email, @username, @first_name, @last_name, @display_name, @created_at, @updated_at)`,
    ),
    updateUser: db.prepare<UserRow>(
      `UPDATE users SET email = @email, username = @username, first_name = @first_name, last_name = @last_name,
         display_name = @display_name, updated_at = @updated_at
       WHERE id = @id`,
    ),
    deleteUser: db.prepare<[string]>('DELETE FROM users WHERE id = ?'),
    findById: db.prepare<[string], UserRow>('SELECT * FROM users WHERE id = ?'),
    findByIds: db.prepare<[string], UserRow>(
      'SELECT * FROM users WHERE id IN (SELECT value FROM json_each(?))',
    ),
    listFirst: db.prepare<[number], UserRow>('SELECT * FROM users ORDER BY id ASC LIMIT ?'),
    listAfter: db.prepare<[string, number], UserRow>(
      'SELECT * FROM users WHERE id > ? ORDER BY id ASC LIMIT ?',
    ),
    count: db.prepare<[], number>('SELECT count(*) FROM users').pluck(),
  };

  // Writes use BEGIN IMMEDIATE: they read before writing, and taking the write lock up front avoids
  // SQLITE_BUSY on lock upgrade when another process writes to the same file.
  const insertTx = db.transaction((user: UserRecord, event: AivaEvent): void => {
    stmt.insertUser.run(toRow(user));
    outbox.write(event);
  });

  const updateTx = db.transaction(
    (
      id: string,
      patch: UserPatch,
      updatedAt: Date,
      makeEvent: (u: UserRecord) => AivaEvent,
    ): UserRecord | null => {
      const row = stmt.findById.get(id);
      if (!row) return null;
      const updated = applyPatch(fromRow(row), patch, updatedAt);
      stmt.updateUser.run(toRow(updated));
      outbox.write(makeEvent(updated));
      return updated;
    },
  );

  const removeTx = db.transaction((id: string, makeEvent: (u: UserRecord) => AivaEvent): boolean => {
    const row = stmt.findById.get(id);
    if (!row) return false;
    stmt.deleteUser.run(id);
    outbox.write(makeEvent(fromRow(row)));
    return true;
  });

  /** The email change of `syncEmail`, run by `processed.runOnce` inside its transaction. */
  const applyEmail = (
    change: { userId: string; email: string; at: Date },
    makeEvent: (u: UserRecord) => AivaEvent,
  ): 'updated' | 'unchanged' | 'missing' => {
    const row = stmt.findById.get(change.userId);
    if (!row) return 'missing';
    if (row.email === change.email) return 'unchanged';
    const updated = applyPatch(fromRow(row), { email: change.email }, change.at);
    stmt.updateUser.run(toRow(updated));
    outbox.write(makeEvent(updated));
    return 'updated';
  };

  return {
    kind: 'sqlite',

    async insert(user, event) {
      try {
        insertTx.immediate(user, event);
      } catch (error) {
        throw mapUniqueViolation(error);
      }
      return { ...user };
    },

    async findById(id) {
      const row = stmt.findById.get(id);
      return row ? fromRow(row) : null;
    },

    async findByIds(ids) {
      if (ids.length === 0) return [];
      return stmt.findByIds.all(JSON.stringify([...new Set(ids)])).map(fromRow);
    },

    async list({ first, afterId }): Promise<UserPage> {
      const limit = Math.max(0, Math.floor(first));
      const rows =
        afterId === undefined ? stmt.listFirst.all(limit + 1) : stmt.listAfter.all(afterId, limit + 1);
      return { users: rows.slice(0, limit).map(fromRow), hasNextPage: rows.length > limit };
    },

    async count() {
      return stmt.count.get() ?? 0;
    },

    async update(id, patch, updatedAt, makeEvent) {
      try {
        return updateTx.immediate(id, patch, updatedAt, makeEvent);
      } catch (error) {
        throw mapUniqueViolation(error);
      }
    },

    async remove(id, makeEvent) {
      return removeTx.immediate(id, makeEvent);
    },

    async syncEmail(change, makeEvent) {
      try {
        // The change, its event and the record of the event id commit together (one BEGIN IMMEDIATE).
        const once = processed.runOnce(change.consumer, change.eventId, () => applyEmail(change, makeEvent));
        return once.duplicate ? 'duplicate' : once.result;
      } catch (error) {
        throw mapUniqueViolation(error);
      }
    },

    ...outboxMethods(outbox),

    ping,
    close,
  };
}
