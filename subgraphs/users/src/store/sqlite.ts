import {
  type AivaEvent,
  openSqliteEventStore,
  SQLITE_OUTBOX_RELAY_MIGRATION,
  SQLITE_OUTBOX_SCHEMA,
  SQLITE_PROCESSED_EVENTS_SCHEMA,
  sqliteTable,
} from '@aiva/shared';
import { USER_FIELDS, type UserPatch, type UserRecord, type UserStore, userQueries } from './user.store.js';

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
  `${SQLITE_PROCESSED_EVENTS_SCHEMA}
  DELETE FROM outbox WHERE published_at IS NOT NULL;
  `,
  // 3: outbox quarantine (attempts, last error) and the relay lease shared by the instances on this file.
  SQLITE_OUTBOX_RELAY_MIGRATION,
];

function applyPatch(user: UserRecord, patch: UserPatch, updatedAt: Date): UserRecord {
  const next: UserRecord = { ...user, updatedAt: new Date(updatedAt.getTime()) };
  if (patch.email !== undefined) next.email = patch.email;
  if (patch.username !== undefined) next.username = patch.username;
  if (patch.firstName !== undefined) next.firstName = patch.firstName;
  if (patch.lastName !== undefined) next.lastName = patch.lastName;
  if (patch.displayName !== undefined) next.displayName = patch.displayName;
  return next;
}

/** Opens (creating and migrating when needed) the SQLite user store. Synchronous under the hood. */
export function openSqliteUserStore(options: SqliteUserStoreOptions): UserStore {
  const store = openSqliteEventStore({
    file: options.file,
    // No `component`: the version stays in `PRAGMA user_version`, where existing users.sqlite files record it.
    migrations: MIGRATIONS,
    label: 'users database',
    // The unique indexes are on the columns (COLLATE NOCASE), so SQLite names the columns.
    constraints: {
      unique: [
        { target: 'users.email', message: 'A user with this email already exists', field: 'email' },
        { target: 'users.username', message: 'A user with this username already exists', field: 'username' },
        { target: 'users.id', message: 'A user with this id already exists', field: 'id' },
      ],
    },
  });
  const { outbox } = store;
  const users = sqliteTable(store.db, { table: 'users', fields: USER_FIELDS });
  const list = users.pager();

  /** Stores `user` with the patch applied and writes its event (inside a transaction). */
  const saveUpdate = (
    user: UserRecord,
    patch: UserPatch,
    updatedAt: Date,
    makeEvent: (u: UserRecord) => AivaEvent,
  ): UserRecord => {
    const updated = applyPatch(user, patch, updatedAt);
    users.update(updated);
    outbox.write(makeEvent(updated));
    return updated;
  };

  const insertTx = store.transaction((user: UserRecord, event: AivaEvent): void => {
    users.insert(user);
    outbox.write(event);
  });
  const updateTx = store.transaction(
    (id: string, patch: UserPatch, updatedAt: Date, makeEvent: (u: UserRecord) => AivaEvent) => {
      const user = users.findById(id);
      return user ? saveUpdate(user, patch, updatedAt, makeEvent) : null;
    },
  );
  const removeTx = store.transaction((id: string, makeEvent: (u: UserRecord) => AivaEvent): boolean => {
    const user = users.findById(id);
    if (!user) return false;
    users.deleteById(id);
    outbox.write(makeEvent(user));
    return true;
  });

  return {
    kind: 'sqlite',

    async insert(user, event) {
      insertTx(user, event);
      return { ...user };
    },

    ...userQueries({ ...users, page: (request) => list.page(request) }),

    async update(id, patch, updatedAt, makeEvent) {
      return updateTx(id, patch, updatedAt, makeEvent);
    },

    async remove(id, makeEvent) {
      return removeTx(id, makeEvent);
    },

    async syncEmail(change, makeEvent) {
      // The change, its event and the record of the event id commit together (one BEGIN IMMEDIATE).
      return store.once(change.consumer, change.eventId, () => {
        const user = users.findById(change.userId);
        if (!user) return 'missing' as const;
        if (user.email === change.email) return 'unchanged' as const;
        saveUpdate(user, { email: change.email }, change.at, makeEvent);
        return 'updated' as const;
      });
    },

    ...store.relay,
    ping: store.ping,
    close: store.close,
  };
}
