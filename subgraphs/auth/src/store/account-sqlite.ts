import {
  type AivaEvent,
  notFound,
  openSqliteEventStore,
  SQLITE_OUTBOX_RELAY_MIGRATION,
  SQLITE_OUTBOX_SCHEMA,
  SQLITE_PROCESSED_EVENTS_SCHEMA,
  type SqliteRow,
  sqliteTable,
} from '@aiva/shared';
import {
  ACCOUNT_FIELDS,
  type AccountRecord,
  type AccountStore,
  type OneTimeTokenRecord,
  PROFILE_REMOVAL_FIELDS,
  TOKEN_FIELDS,
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

/** Opens (creating and migrating when needed) the SQLite account store. Synchronous under the hood. */
export function openSqliteAccountStore(options: SqliteAccountStoreOptions): AccountStore {
  const store = openSqliteEventStore({
    file: options.file,
    component: ACCOUNT_SCHEMA_COMPONENT,
    migrations: MIGRATIONS,
    label: 'auth accounts',
    constraints: {
      unique: [
        { target: 'accounts.email', message: 'An account with this email already exists', field: 'email' },
        { target: 'accounts.id', message: 'An account with this id already exists', field: 'id' },
      ],
      // The only foreign key: a token's account.
      foreignKey: () => notFound('No account with this id', { field: 'accountId' }),
    },
  });
  const { db, outbox } = store;
  const accounts = sqliteTable(db, { table: 'accounts', fields: ACCOUNT_FIELDS });
  const tokens = sqliteTable(db, { table: 'one_time_tokens', fields: TOKEN_FIELDS, key: 'hash' });
  const removals = sqliteTable(db, {
    table: 'pending_profile_removals',
    fields: PROFILE_REMOVAL_FIELDS,
    key: 'userId',
  });
  const stmt = {
    // `email` is COLLATE NOCASE (ASCII case folding); lower-casing the argument covers the rest of Unicode,
    // as emails are stored lower-cased.
    findByEmail: db.prepare<[string], SqliteRow>('SELECT * FROM accounts WHERE email = ?'),
    updatePassword: db.prepare<[string, string, string, string]>(
      'UPDATE accounts SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE id = ?',
    ),
    setEmailVerified: db.prepare<[string, string]>(
      'UPDATE accounts SET email_verified = 1, updated_at = ? WHERE id = ?',
    ),
    setRoles: db.prepare<[string, string, string]>(
      'UPDATE accounts SET roles = ?, updated_at = ? WHERE id = ?',
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
    claimRemovals: db.prepare<{ now: string; leaseUntil: string; limit: number }, SqliteRow>(
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
    listRemovals: db.prepare<[], SqliteRow>(
      'SELECT * FROM pending_profile_removals ORDER BY created_at, user_id',
    ),
    // One statement: the check and the write are atomic, so of concurrent consumers exactly one wins.
    consumeToken: db.prepare<{ hash: string; purpose: string; now: string }, SqliteRow>(
      `UPDATE one_time_tokens SET used_at = @now
       WHERE hash = @hash AND purpose = @purpose AND used_at IS NULL AND expires_at > @now
       RETURNING *`,
    ),
    deleteTokensExpiredBefore: db.prepare<[string]>('DELETE FROM one_time_tokens WHERE expires_at < ?'),
  };

  const insertTx = store.transaction((account: AccountRecord, events: readonly AivaEvent[]): void => {
    accounts.insert({ ...account, email: account.email.toLowerCase() });
    outbox.write(events);
  });

  const insertTokenTx = store.transaction(
    (token: OneTimeTokenRecord, events: readonly AivaEvent[], cleanupBefore: string | null): void => {
      if (cleanupBefore !== null) stmt.deleteTokensExpiredBefore.run(cleanupBefore);
      tokens.insert({ ...token, newEmail: token.newEmail?.toLowerCase() });
      outbox.write(events);
    },
  );
  let lastTokenCleanup = 0;

  const changeEmailTx = store.transaction(
    (id: string, email: string, at: string, events: readonly AivaEvent[]): boolean => {
      if (stmt.changeEmail.run(email.toLowerCase(), at, id).changes === 0) return false;
      outbox.write(events);
      return true;
    },
  );

  return {
    kind: 'sqlite',

    async insert(account, events) {
      insertTx(account, events);
    },

    async findById(id) {
      return accounts.findById(id);
    },

    async findByIds(ids) {
      return accounts.findByIds(ids);
    },

    async findByEmail(email) {
      const row = stmt.findByEmail.get(email.toLowerCase());
      return row ? accounts.fromRow(row) : null;
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
      return accounts.deleteById(id);
    },

    async removeForEvent(consumer, eventId, id) {
      // The removal and the record of the event id commit together (one BEGIN IMMEDIATE).
      return store.once(consumer, eventId, () =>
        accounts.deleteById(id) ? ('removed' as const) : ('missing' as const),
      );
    },

    async hasProcessed(consumer, eventId) {
      return store.processed.has(consumer, eventId);
    },

    async insertToken(token, events) {
      const now = Date.now();
      const cleanup = now - lastTokenCleanup >= TOKEN_CLEANUP_INTERVAL_MS;
      const cleanupBefore = cleanup ? new Date(now - EXPIRED_TOKEN_RETENTION_MS).toISOString() : null;
      insertTokenTx(token, events, cleanupBefore);
      if (cleanup) lastTokenCleanup = now;
    },

    async consumeToken(hash, purpose, now) {
      const row = stmt.consumeToken.get({ hash, purpose, now: now.toISOString() });
      // The row as it was before: the WHERE clause guarantees it was unused.
      return row ? { ...tokens.fromRow(row), usedAt: null } : null;
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
      return changeEmailTx(id, email, at.toISOString(), events);
    },

    async addProfileRemoval(userId, at, nextAttemptAt = at) {
      stmt.addRemoval.run(userId, at.toISOString(), nextAttemptAt.toISOString());
    },

    async claimProfileRemovals(now, leaseUntil, limit) {
      const n = Math.max(0, Math.floor(limit));
      if (n === 0) return [];
      return stmt.claimRemovals
        .all({ now: now.toISOString(), leaseUntil: leaseUntil.toISOString(), limit: n })
        .map(removals.fromRow)
        .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
    },

    async failProfileRemoval(userId, nextAttemptAt, error) {
      stmt.failRemoval.run(nextAttemptAt.toISOString(), error.slice(0, 500), userId);
    },

    async completeProfileRemoval(userId) {
      removals.deleteById(userId);
    },

    async pendingProfileRemovals() {
      return stmt.listRemovals.all().map(removals.fromRow);
    },

    ...store.relay,
    ping: store.ping,
    close: store.close,
  };
}
