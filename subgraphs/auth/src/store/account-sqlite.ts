import {
  type AivaEvent,
  conflict,
  createSqliteOutbox,
  createSqliteProcessedEvents,
  notFound,
  openMigratedSqlite,
  outboxMethods,
  SQLITE_OUTBOX_RELAY_MIGRATION,
  SQLITE_OUTBOX_SCHEMA,
  SQLITE_PROCESSED_EVENTS_SCHEMA,
  sqliteStoreLifecycle,
} from '@aiva/shared';
import type {
  AccountRecord,
  AccountStore,
  OneTimeTokenPurpose,
  OneTimeTokenRecord,
  PendingProfileRemoval,
} from './account.store.js';

export interface SqliteAccountStoreOptions {
  /**
   * Path of the database file (its directory is created when missing), or `':memory:'`. The session store may
   * use the same file: each records its schema version under its own name in `schema_migrations`.
   */
  file: string;
}

/** The name of this schema in `schema_migrations`. */
export const ACCOUNT_SCHEMA_COMPONENT = 'auth.accounts';

/** Tokens expired longer than this are deleted, at most once per interval, piggybacking on `insertToken`. */
const EXPIRED_TOKEN_RETENTION_MS = 24 * 60 * 60 * 1000;
const TOKEN_CLEANUP_INTERVAL_MS = 60 * 1000;

/**
 * Schema migrations of the account store, recorded as `auth.accounts` in `schema_migrations`. Append new steps,
 * never edit old ones. Timestamps are ISO-8601 UTC strings (`Date#toISOString`), which compare correctly as text.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE accounts (
    id                  TEXT PRIMARY KEY NOT NULL,
    email               TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash       TEXT NOT NULL,
    email_verified      INTEGER NOT NULL CHECK (email_verified IN (0, 1)),
    roles               TEXT NOT NULL CHECK (json_valid(roles) AND json_type(roles) = 'array'),
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    password_changed_at TEXT NOT NULL
  ) STRICT;

  CREATE TABLE one_time_tokens (
    hash       TEXT PRIMARY KEY NOT NULL,
    purpose    TEXT NOT NULL CHECK (purpose IN ('password_reset', 'email_verification')),
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT NULL
  ) STRICT;
  CREATE INDEX one_time_tokens_account ON one_time_tokens (account_id);
  CREATE INDEX one_time_tokens_expires_at ON one_time_tokens (expires_at);
  ${SQLITE_OUTBOX_SCHEMA}
  `,
  // 2: email-change tokens (purpose and the new address); the durable undo of half-done sign-ups; and no secret
  // left in the outbox: published rows (kept 7 days before) go, and so do unpublished token events of the old
  // code, whose plaintext token no current consumer accepts (the person asks for a new mail).
  `
  CREATE TABLE one_time_tokens_v2 (
    hash       TEXT PRIMARY KEY NOT NULL,
    purpose    TEXT NOT NULL CHECK (purpose IN ('password_reset', 'email_verification', 'email_change')),
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    new_email  TEXT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT NULL
  ) STRICT;
  INSERT INTO one_time_tokens_v2 (hash, purpose, account_id, created_at, expires_at, used_at)
    SELECT hash, purpose, account_id, created_at, expires_at, used_at FROM one_time_tokens;
  DROP TABLE one_time_tokens;
  ALTER TABLE one_time_tokens_v2 RENAME TO one_time_tokens;
  CREATE INDEX one_time_tokens_account ON one_time_tokens (account_id, purpose);
  CREATE INDEX one_time_tokens_expires_at ON one_time_tokens (expires_at);

  CREATE TABLE pending_profile_removals (
    user_id         TEXT PRIMARY KEY NOT NULL,
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT NULL
  ) STRICT;
  CREATE INDEX pending_profile_removals_due ON pending_profile_removals (next_attempt_at);

  DELETE FROM outbox WHERE published_at IS NOT NULL;
  DELETE FROM outbox
   WHERE type IN ('aiva.auth.password_reset.requested.v1', 'aiva.auth.email_verification.requested.v1')
     AND coalesce(json_extract(payload, '$.data.token'), '') NOT LIKE 'sealed:v1:%';
  `,
  // 3: outbox quarantine and the relay lease; events the consumers processed (idempotency by event id).
  `${SQLITE_OUTBOX_RELAY_MIGRATION}
  ${SQLITE_PROCESSED_EVENTS_SCHEMA}`,
];

interface AccountRow {
  id: string;
  email: string;
  password_hash: string;
  email_verified: number;
  roles: string;
  created_at: string;
  updated_at: string;
  password_changed_at: string;
}

interface TokenRow {
  hash: string;
  purpose: string;
  account_id: string;
  new_email: string | null;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

function toRow(account: AccountRecord): AccountRow {
  return {
    id: account.id,
    email: account.email.toLowerCase(),
    password_hash: account.passwordHash,
    email_verified: account.emailVerified ? 1 : 0,
    roles: JSON.stringify(account.roles),
    created_at: account.createdAt.toISOString(),
    updated_at: account.updatedAt.toISOString(),
    password_changed_at: account.passwordChangedAt.toISOString(),
  };
}

function fromRow(row: AccountRow): AccountRecord {
  return {
    id: row.id,
    email: row.email,
    passwordHash: row.password_hash,
    emailVerified: row.email_verified === 1,
    roles: JSON.parse(row.roles) as string[],
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    passwordChangedAt: new Date(row.password_changed_at),
  };
}

interface RemovalRow {
  user_id: string;
  created_at: string;
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
}

function removalFromRow(row: RemovalRow): PendingProfileRemoval {
  return {
    userId: row.user_id,
    createdAt: new Date(row.created_at),
    attempts: row.attempts,
    nextAttemptAt: new Date(row.next_attempt_at),
    lastError: row.last_error,
  };
}

function tokenToRow(token: OneTimeTokenRecord): TokenRow {
  return {
    hash: token.hash,
    purpose: token.purpose,
    account_id: token.accountId,
    new_email: token.newEmail?.toLowerCase() ?? null,
    created_at: token.createdAt.toISOString(),
    expires_at: token.expiresAt.toISOString(),
    used_at: token.usedAt ? token.usedAt.toISOString() : null,
  };
}

function tokenFromRow(row: TokenRow): OneTimeTokenRecord {
  return {
    hash: row.hash,
    purpose: row.purpose as OneTimeTokenPurpose,
    accountId: row.account_id,
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
    usedAt: row.used_at === null ? null : new Date(row.used_at),
    ...(row.new_email === null ? {} : { newEmail: row.new_email }),
  };
}

/**
 * Turns constraint violations on `accounts` / `one_time_tokens` into domain errors (duplicate email or id:
 * CONFLICT; a token for an unknown account: NOT_FOUND); anything else is returned unchanged.
 */
function mapConstraintViolation(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
    return notFound('No account with this id', { field: 'accountId' });
  }
  if (code !== 'SQLITE_CONSTRAINT_UNIQUE' && code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') return error;
  // The message names the violated columns: "UNIQUE constraint failed: accounts.email".
  if (/\baccounts\.email\b/.test(error.message)) {
    return conflict('An account with this email already exists', { field: 'email' });
  }
  if (/\baccounts\.id\b/.test(error.message)) {
    return conflict('An account with this id already exists', { field: 'id' });
  }
  return error;
}

/** Opens (creating and migrating when needed) the SQLite account store. Synchronous under the hood. */
export function openSqliteAccountStore(options: SqliteAccountStoreOptions): AccountStore {
  const db = openMigratedSqlite(options.file, {
    component: ACCOUNT_SCHEMA_COMPONENT,
    migrations: MIGRATIONS,
    label: 'auth accounts',
  });

  const outbox = createSqliteOutbox(db);
  const processed = createSqliteProcessedEvents(db);
  const { ping, close } = sqliteStoreLifecycle(db);
  const stmt = {
    insertAccount: db.prepare<AccountRow>(
      `INSERT INTO accounts (id, email, password_hash, email_verified, roles, created_at, updated_at,
         password_changed_at)
       VALUES (@id, @email, @password_hash, @email_verified, @roles, @created_at, @updated_at,
         @password_changed_at)`,
    ),
    findById: db.prepare<[string], AccountRow>('SELECT * FROM accounts WHERE id = ?'),
    findByIds: db.prepare<[string], AccountRow>(
      'SELECT * FROM accounts WHERE id IN (SELECT value FROM json_each(?))',
    ),
    // `email` is COLLATE NOCASE (ASCII case folding); lower-casing the argument covers the rest of Unicode,
    // as emails are stored lower-cased.
    findByEmail: db.prepare<[string], AccountRow>('SELECT * FROM accounts WHERE email = ?'),
    updatePassword: db.prepare<[string, string, string, string]>(
      'UPDATE accounts SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE id = ?',
    ),
    setEmailVerified: db.prepare<[string, string]>(
      'UPDATE accounts SET email_verified = 1, updated_at = ? WHERE id = ?',
    ),
    setRoles: db.prepare<[string, string, string]>(
      'UPDATE accounts SET roles = ?, updated_at = ? WHERE id = ?',
    ),
    deleteAccount: db.prepare<[string]>('DELETE FROM accounts WHERE id = ?'),
    insertToken: db.prepare<TokenRow>(
      `INSERT INTO one_time_tokens (hash, purpose, account_id, new_email, created_at, expires_at, used_at)
       VALUES (@hash, @purpose, @account_id, @new_email, @created_at, @expires_at, @used_at)`,
    ),
    invalidateTokens: db.prepare<{ accountId: string; purposes: string; now: string }>(
      `UPDATE one_time_tokens SET used_at = @now
       WHERE account_id = @accountId AND used_at IS NULL
         AND purpose IN (SELECT value FROM json_each(@purposes))`,
    ),
    changeEmail: db.prepare<[string, string, string]>(
      'UPDATE accounts SET email = ?, email_verified = 1, updated_at = ? WHERE id = ?',
    ),
    addRemoval: db.prepare<[string, string, string]>(
      `INSERT INTO pending_profile_removals (user_id, created_at, next_attempt_at) VALUES (?, ?, ?)
       ON CONFLICT (user_id) DO NOTHING`,
    ),
    claimRemovals: db.prepare<{ now: string; leaseUntil: string; limit: number }, RemovalRow>(
      `UPDATE pending_profile_removals SET next_attempt_at = @leaseUntil
       WHERE user_id IN (
         SELECT user_id FROM pending_profile_removals WHERE next_attempt_at <= @now
         ORDER BY next_attempt_at, created_at LIMIT @limit)
       RETURNING *`,
    ),
    failRemoval: db.prepare<[string, string, string]>(
      `UPDATE pending_profile_removals SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?
       WHERE user_id = ?`,
    ),
    completeRemoval: db.prepare<[string]>('DELETE FROM pending_profile_removals WHERE user_id = ?'),
    listRemovals: db.prepare<[], RemovalRow>(
      'SELECT * FROM pending_profile_removals ORDER BY created_at, user_id',
    ),
    // One statement: the check and the write are atomic, so of concurrent consumers exactly one wins.
    consumeToken: db.prepare<{ hash: string; purpose: string; now: string }, TokenRow>(
      `UPDATE one_time_tokens SET used_at = @now
       WHERE hash = @hash AND purpose = @purpose AND used_at IS NULL AND expires_at > @now
       RETURNING *`,
    ),
    deleteTokensExpiredBefore: db.prepare<[string]>('DELETE FROM one_time_tokens WHERE expires_at < ?'),
  };

  // Writes use BEGIN IMMEDIATE: taking the write lock up front avoids SQLITE_BUSY on lock upgrade when another
  // connection writes to the same file.
  const insertTx = db.transaction((account: AccountRecord, events: readonly AivaEvent[]): void => {
    stmt.insertAccount.run(toRow(account));
    for (const event of events) outbox.write(event);
  });

  const insertTokenTx = db.transaction(
    (token: OneTimeTokenRecord, events: readonly AivaEvent[], cleanupBefore: string | null): void => {
      if (cleanupBefore !== null) stmt.deleteTokensExpiredBefore.run(cleanupBefore);
      stmt.insertToken.run(tokenToRow(token));
      for (const event of events) outbox.write(event);
    },
  );
  let lastTokenCleanup = 0;

  const changeEmailTx = db.transaction(
    (id: string, email: string, at: string, events: readonly AivaEvent[]): boolean => {
      if (stmt.changeEmail.run(email.toLowerCase(), at, id).changes === 0) return false;
      for (const event of events) outbox.write(event);
      return true;
    },
  );

  return {
    kind: 'sqlite',

    async insert(account, events) {
      try {
        insertTx.immediate(account, events);
      } catch (error) {
        throw mapConstraintViolation(error);
      }
    },

    async findById(id) {
      const row = stmt.findById.get(id);
      return row ? fromRow(row) : null;
    },

    async findByIds(ids) {
      if (ids.length === 0) return [];
      return stmt.findByIds.all(JSON.stringify([...new Set(ids)])).map(fromRow);
    },

    async findByEmail(email) {
      const row = stmt.findByEmail.get(email.toLowerCase());
      return row ? fromRow(row) : null;
    },

    async updatePassword(id, passwordHash, changedAt) {
      const at = changedAt.toISOString();
      return stmt.updatePassword.run(passwordHash, at, at, id).changes > 0;
    },

    async setEmailVerified(id, at) {
      return stmt.setEmailVerified.run(at.toISOString(), id).changes > 0;
    },

    async setRoles(id, roles, at) {
      return stmt.setRoles.run(JSON.stringify([...roles]), at.toISOString(), id).changes > 0;
    },

    async remove(id) {
      // ON DELETE CASCADE removes the account's tokens (foreign_keys is on for this connection).
      return stmt.deleteAccount.run(id).changes > 0;
    },

    async removeForEvent(consumer, eventId, id) {
      // The removal and the record of the event id commit together (one BEGIN IMMEDIATE).
      const once = processed.runOnce(consumer, eventId, () =>
        stmt.deleteAccount.run(id).changes > 0 ? ('removed' as const) : ('missing' as const),
      );
      return once.duplicate ? 'duplicate' : once.result;
    },

    async hasProcessed(consumer, eventId) {
      return processed.has(consumer, eventId);
    },

    async insertToken(token, events) {
      const now = Date.now();
      const cleanup = now - lastTokenCleanup >= TOKEN_CLEANUP_INTERVAL_MS;
      const cleanupBefore = cleanup ? new Date(now - EXPIRED_TOKEN_RETENTION_MS).toISOString() : null;
      try {
        insertTokenTx.immediate(token, events, cleanupBefore);
      } catch (error) {
        throw mapConstraintViolation(error);
      }
      if (cleanup) lastTokenCleanup = now;
    },

    async consumeToken(hash, purpose, now) {
      const row = stmt.consumeToken.get({ hash, purpose, now: now.toISOString() });
      // The row as it was before: the WHERE clause guarantees it was unused.
      return row ? { ...tokenFromRow(row), usedAt: null } : null;
    },

    async invalidateTokens(accountId, purposes, now) {
      if (purposes.length === 0) return 0;
      return stmt.invalidateTokens.run({
        accountId,
        purposes: JSON.stringify([...purposes]),
        now: now.toISOString(),
      }).changes;
    },

    async changeEmail(id, email, at, events) {
      try {
        return changeEmailTx.immediate(id, email, at.toISOString(), events);
      } catch (error) {
        throw mapConstraintViolation(error);
      }
    },

    async addProfileRemoval(userId, at, nextAttemptAt = at) {
      stmt.addRemoval.run(userId, at.toISOString(), nextAttemptAt.toISOString());
    },

    async claimProfileRemovals(now, leaseUntil, limit) {
      const n = Math.max(0, Math.floor(limit));
      if (n === 0) return [];
      return stmt.claimRemovals
        .all({ now: now.toISOString(), leaseUntil: leaseUntil.toISOString(), limit: n })
        .map(removalFromRow)
        .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
    },

    async failProfileRemoval(userId, nextAttemptAt, error) {
      stmt.failRemoval.run(nextAttemptAt.toISOString(), error.slice(0, 500), userId);
    },

    async completeProfileRemoval(userId) {
      stmt.completeRemoval.run(userId);
    },

    async pendingProfileRemovals() {
      return stmt.listRemovals.all().map(removalFromRow);
    },

    ...outboxMethods(outbox),

    ping,
    close,
  };
}
