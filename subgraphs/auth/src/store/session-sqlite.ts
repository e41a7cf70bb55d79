import { conflict, openMigratedSqlite, sqliteStoreLifecycle } from '@aiva/shared';
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

interface SessionRow {
  id: string;
  user_id: string;
  token_hash: string;
  previous_hashes: string;
  created_at: string;
  last_used_at: string;
  expires_at: string;
  revoked_at: string | null;
  revoked_reason: string | null;
  user_agent: string | null;
  ip: string | null;
}

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

function toRow(session: SessionRecord): SessionRow {
  return {
    id: session.id,
    user_id: session.userId,
    token_hash: session.tokenHash,
    previous_hashes: JSON.stringify(session.previousHashes.slice(-MAX_PREVIOUS_HASHES)),
    created_at: session.createdAt.toISOString(),
    last_used_at: session.lastUsedAt.toISOString(),
    expires_at: session.expiresAt.toISOString(),
    revoked_at: iso(session.revokedAt),
    revoked_reason: session.revokedReason,
    user_agent: session.userAgent,
    ip: session.ip,
  };
}

function fromRow(row: SessionRow): SessionRecord {
  const previous: unknown = JSON.parse(row.previous_hashes);
  return {
    id: row.id,
    userId: row.user_id,
    tokenHash: row.token_hash,
    previousHashes: Array.isArray(previous) ? previous.map(String) : [],
    createdAt: new Date(row.created_at),
    lastUsedAt: new Date(row.last_used_at),
    expiresAt: new Date(row.expires_at),
    revokedAt: row.revoked_at === null ? null : new Date(row.revoked_at),
    revokedReason: row.revoked_reason,
    userAgent: row.user_agent,
    ip: row.ip,
  };
}

/** Opens (creating and migrating when needed) the SQLite session store. Synchronous under the hood. */
export function openSqliteSessionStore(options: SqliteSessionStoreOptions): SessionStore {
  const db = openMigratedSqlite(options.file, {
    component: SESSION_SCHEMA_COMPONENT,
    migrations: MIGRATIONS,
    label: 'auth sessions',
  });

  const { ping, close } = sqliteStoreLifecycle(db);
  const stmt = {
    insert: db.prepare<SessionRow>(
      `INSERT INTO sessions (id, user_id, token_hash, previous_hashes, created_at, last_used_at, expires_at,
         revoked_at, revoked_reason, user_agent, ip)
       VALUES (@id, @user_id, @token_hash, @previous_hashes, @created_at, @last_used_at, @expires_at,
         @revoked_at, @revoked_reason, @user_agent, @ip)`,
    ),
    get: db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE id = ?'),
    // The compare-and-set: the WHERE clause repeats every condition, so the update only happens when the
    // session is still in the state the new `previous_hashes` was computed from.
    rotate: db.prepare<
      { id: string; expected: string; next: string; previous: string; now: string },
      SessionRow
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
    listActive: db.prepare<{ userId: string; now: string }, SessionRow>(
      `SELECT * FROM sessions
       WHERE user_id = @userId AND revoked_at IS NULL AND expires_at > @now
       ORDER BY created_at DESC, id DESC`,
    ),
    deleteExpired: db.prepare<[string]>('DELETE FROM sessions WHERE expires_at <= ?'),
  };

  const createTx = db.transaction((session: SessionRecord, cleanupBefore: string | null): void => {
    if (cleanupBefore !== null) stmt.deleteExpired.run(cleanupBefore);
    stmt.insert.run(toRow(session));
  });

  // Read, compute the bounded hash list, compare-and-set: under BEGIN IMMEDIATE nobody writes in between,
  // and the CAS in the UPDATE keeps it correct even without the lock.
  const rotateTx = db.transaction(
    (id: string, expectedHash: string, nextHash: string, now: string): SessionRow | null => {
      const row = stmt.get.get(id);
      if (!row || row.token_hash !== expectedHash || row.revoked_at !== null || row.expires_at <= now) {
        return null;
      }
      const previous = fromRow(row).previousHashes;
      previous.push(expectedHash);
      const bounded = previous.slice(-MAX_PREVIOUS_HASHES);
      return (
        stmt.rotate.get({
          id,
          expected: expectedHash,
          next: nextHash,
          previous: JSON.stringify(bounded),
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
      try {
        createTx.immediate(session, cleanup ? new Date(now).toISOString() : null);
      } catch (error) {
        const code = (error as { code?: unknown } | null)?.code;
        if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
          throw conflict('A session with this id already exists', { field: 'id' });
        }
        throw error;
      }
      if (cleanup) lastCleanup = now;
    },

    async get(id) {
      const row = stmt.get.get(id);
      return row ? fromRow(row) : null;
    },

    async rotate(id, expectedHash, nextHash, now) {
      const row = rotateTx.immediate(id, expectedHash, nextHash, now.toISOString());
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

    ping,
    close,
  };
}
