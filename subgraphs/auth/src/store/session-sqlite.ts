import { openSqliteStore, type RecordFields, type SqliteRow, sqliteTable } from '@aiva/shared';
import { MAX_PREVIOUS_HASHES, type SessionRecord, type SessionStore } from './session.store.js';

export interface SqliteSessionStoreOptions {
  /**
   * Path of the database file (its directory is created when missing), or `':memory:'`. May be the account
   * store's file: the schema version is recorded as `auth.sessions` in `schema_migrations`, next to the account
   * store's `auth.accounts`, never in `PRAGMA user_version`.
   */
  file: string;
}

/** The name of this schema in `schema_migrations`. */
export const SESSION_SCHEMA_COMPONENT = 'auth.sessions';

/** Expired sessions are deleted at most this often, piggybacking on `create`. */
const CLEANUP_INTERVAL_MS = 60 * 1000;

/**
 * Schema migrations of the session store. Append new steps, never edit old ones. Timestamps are ISO-8601 UTC
 * strings (`Date#toISOString`), which compare correctly as text.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE sessions (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL,
    token_hash      TEXT NOT NULL,
    previous_hashes TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(previous_hashes)),
    created_at      TEXT NOT NULL,
    last_used_at    TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    revoked_at      TEXT NULL,
    revoked_reason  TEXT NULL,
    user_agent      TEXT NULL,
    ip              TEXT NULL
  ) STRICT;
  CREATE INDEX sessions_user ON sessions (user_id, created_at);
  CREATE INDEX sessions_expires_at ON sessions (expires_at);
  `,
];

const SESSION_FIELDS: RecordFields<SessionRecord> = {
  id: 'string',
  userId: 'string',
  tokenHash: 'string',
  previousHashes: 'list',
  createdAt: 'date',
  lastUsedAt: 'date',
  expiresAt: 'date',
  revokedAt: 'date?',
  revokedReason: 'value',
  userAgent: 'value',
  ip: 'value',
};

/** A stored session as a record: the hashes as strings (a malformed list reads as empty: the `list` kind). */
function checked(session: SessionRecord): SessionRecord {
  return { ...session, previousHashes: session.previousHashes.map(String) };
}

/** The stored form: at most MAX_PREVIOUS_HASHES previous hashes. */
function bounded(session: SessionRecord): SessionRecord {
  return { ...session, previousHashes: session.previousHashes.slice(-MAX_PREVIOUS_HASHES) };
}

/** Opens (creating and migrating when needed) the SQLite session store. Synchronous under the hood. */
export function openSqliteSessionStore(options: SqliteSessionStoreOptions): SessionStore {
  const store = openSqliteStore({
    file: options.file,
    component: SESSION_SCHEMA_COMPONENT,
    migrations: MIGRATIONS,
    label: 'auth sessions',
    constraints: {
      unique: [{ target: 'sessions.id', message: 'A session with this id already exists', field: 'id' }],
    },
  });
  const { db } = store;
  const sessions = sqliteTable(db, { table: 'sessions', fields: SESSION_FIELDS });
  const fromRow = (row: SqliteRow): SessionRecord => checked(sessions.fromRow(row));
  const stmt = {
    // The compare-and-set: the WHERE clause repeats every condition, so the update only happens when the
    // session is still in the state the new `previous_hashes` was computed from.
    rotate: db.prepare<
      { id: string; expected: string; next: string; previous: string; now: string },
      SqliteRow
    >(
      `UPDATE sessions SET token_hash = @next, previous_hashes = @previous, last_used_at = @now
       WHERE id = @id AND token_hash = @expected AND revoked_at IS NULL AND expires_at > @now
       RETURNING *`,
    ),
    revoke: db.prepare<{ id: string; reason: string; now: string }>(
      `UPDATE sessions SET revoked_at = @now, revoked_reason = @reason
       WHERE id = @id AND revoked_at IS NULL AND expires_at > @now`,
    ),
    revokeAllForUser: db.prepare<{ userId: string; reason: string; now: string; except: string | null }>(
      `UPDATE sessions SET revoked_at = @now, revoked_reason = @reason
       WHERE user_id = @userId AND revoked_at IS NULL AND expires_at > @now AND id IS NOT @except`,
    ),
    listActive: db.prepare<{ userId: string; now: string }, SqliteRow>(
      `SELECT * FROM sessions
       WHERE user_id = @userId AND revoked_at IS NULL AND expires_at > @now
       ORDER BY created_at DESC, id DESC`,
    ),
    deleteExpired: db.prepare<[string]>('DELETE FROM sessions WHERE expires_at <= ?'),
  };

  const createTx = store.transaction((session: SessionRecord, cleanupBefore: string | null): void => {
    if (cleanupBefore !== null) stmt.deleteExpired.run(cleanupBefore);
    sessions.insert(bounded(session));
  });

  // Read, compute the bounded hash list, compare-and-set: under BEGIN IMMEDIATE nobody writes in between,
  // and the CAS in the UPDATE keeps it correct even without the lock.
  const rotateTx = store.transaction(
    (id: string, expectedHash: string, nextHash: string, now: string): SqliteRow | null => {
      const session = sessions.findById(id);
      if (
        !session ||
        session.tokenHash !== expectedHash ||
        session.revokedAt !== null ||
        session.expiresAt.toISOString() <= now
      ) {
        return null;
      }
      const previous = checked(session).previousHashes;
      previous.push(expectedHash);
      return (
        stmt.rotate.get({
          id,
          expected: expectedHash,
          next: nextHash,
          previous: JSON.stringify(previous.slice(-MAX_PREVIOUS_HASHES)),
          now,
        }) ?? null
      );
    },
  );

  let lastCleanup = 0;

  return {
    kind: 'sqlite',

    async create(session) {
      const now = Date.now();
      const cleanup = now - lastCleanup >= CLEANUP_INTERVAL_MS;
      createTx(session, cleanup ? new Date(now).toISOString() : null);
      if (cleanup) lastCleanup = now;
    },

    async get(id) {
      const session = sessions.findById(id);
      return session ? checked(session) : null;
    },

    async rotate(id, expectedHash, nextHash, now) {
      const row = rotateTx(id, expectedHash, nextHash, now.toISOString());
      return row ? fromRow(row) : null;
    },

    async revoke(id, reason, now) {
      return stmt.revoke.run({ id, reason, now: now.toISOString() }).changes > 0;
    },

    async revokeAllForUser(userId, reason, now, exceptSessionId) {
      return stmt.revokeAllForUser.run({
        userId,
        reason,
        now: now.toISOString(),
        except: exceptSessionId ?? null,
      }).changes;
    },

    async listActiveForUser(userId, now) {
      return stmt.listActive.all({ userId, now: now.toISOString() }).map(fromRow);
    },

    ping: store.ping,
    close: store.close,
  };
}
