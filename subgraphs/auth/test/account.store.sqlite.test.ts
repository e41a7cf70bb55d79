import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createEvent,
  generateSealingKey,
  openMigratedSqlite,
  openSqliteDatabase,
  SQLITE_OUTBOX_SCHEMA,
  seal,
  sealingKeys,
  uuidv7,
} from '@aiva/shared';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteAccountStore } from '../src/store/account-sqlite.js';
import { openSqliteSessionStore } from '../src/store/session-sqlite.js';
import {
  accountStoreContract,
  makeAccount,
  makeToken,
  registeredEvent,
  tokenEvent,
} from './account.store.contract.js';
import { makeSession } from './session.store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'aiva-auth-accounts-sqlite-'));
let n = 0;
/** A fresh database file (in a not-yet-existing subdirectory, which the store must create). */
const freshFile = () => join(dir, `db-${++n}`, 'auth.sqlite');

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

accountStoreContract('sqlite (file)', async () => openSqliteAccountStore({ file: freshFile() }));
accountStoreContract('sqlite (:memory:)', async () => openSqliteAccountStore({ file: ':memory:' }));

describe('SQLite account store', () => {
  it('keeps accounts, tokens and pending events across close and reopen', async () => {
    const file = freshFile();
    const store = openSqliteAccountStore({ file });
    const account = makeAccount({ roles: ['user', 'admin'] });
    const event = registeredEvent(account);
    await store.insert(account, [event]);
    const { token, secret } = makeToken(account.id);
    const requested = tokenEvent(account, token, secret);
    await store.insertToken(token, [requested]);
    await store.close();

    const reopened = openSqliteAccountStore({ file });
    try {
      expect(await reopened.findById(account.id)).toEqual(account);
      expect(await reopened.pendingEvents(10)).toEqual([event, requested]);
      const dup = makeAccount({ email: account.email.toUpperCase() });
      await expect(reopened.insert(dup, [registeredEvent(dup)])).rejects.toMatchObject({
        extensions: { code: 'CONFLICT', field: 'email' },
      });
      expect(await reopened.consumeToken(token.hash, token.purpose, new Date())).toEqual(token);
    } finally {
      await reopened.close();
    }
  });

  it('uses WAL, foreign keys, and records its schema version by name', async () => {
    const file = freshFile();
    const store = openSqliteAccountStore({ file });
    await store.close();

    const db = openSqliteDatabase(file, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('user_version', { simple: true })).toBe(0);
      expect(db.prepare('SELECT component, version FROM schema_migrations').all()).toEqual([
        { component: 'auth.accounts', version: 3 },
      ]);
      const tables = db
        .prepare<[], { name: string; sql: string }>(
          "SELECT name, sql FROM sqlite_master WHERE type = 'table'",
        )
        .all();
      const sqlOf = (name: string) => tables.find((t) => t.name === name)?.sql ?? '';
      expect(sqlOf('accounts')).toMatch(/email\s+TEXT NOT NULL UNIQUE COLLATE NOCASE/);
      expect(sqlOf('accounts')).toMatch(/STRICT/);
      expect(sqlOf('one_time_tokens')).toMatch(/REFERENCES accounts \(id\) ON DELETE CASCADE/);
      expect(sqlOf('outbox')).not.toBe('');
      expect(sqlOf('one_time_tokens')).toMatch(/'email_change'/);
      expect(sqlOf('pending_profile_removals')).not.toBe('');
    } finally {
      db.close();
    }
  });

  it('shares a file with the session store, each with its own schema version', async () => {
    const file = freshFile();
    const accounts = openSqliteAccountStore({ file });
    const sessions = openSqliteSessionStore({ file });
    try {
      const account = makeAccount();
      await accounts.insert(account, []);
      const session = makeSession({ userId: account.id });
      await sessions.create(session);
      expect(await sessions.get(session.id)).toEqual(session);
      expect(await accounts.findById(account.id)).toEqual(account);
    } finally {
      await sessions.close();
      await accounts.close();
    }
    // Reopening in the other order re-runs no migration.
    const sessions2 = openSqliteSessionStore({ file });
    const accounts2 = openSqliteAccountStore({ file });
    await sessions2.close();
    await accounts2.close();

    const db = openSqliteDatabase(file, { readonly: true });
    try {
      expect(db.prepare('SELECT component, version FROM schema_migrations ORDER BY component').all()).toEqual(
        [
          { component: 'auth.accounts', version: 3 },
          { component: 'auth.sessions', version: 1 },
        ],
      );
    } finally {
      db.close();
    }
  });

  it('deletes outbox rows once published, keeping none of their data', async () => {
    const file = freshFile();
    const store = openSqliteAccountStore({ file });
    const account = makeAccount();
    const { token, secret } = makeToken(account.id);
    const registered = registeredEvent(account);
    const requested = tokenEvent(account, token, secret);
    try {
      await store.insert(account, [registered]);
      await store.insertToken(token, [requested]);
      await store.markPublished([registered.id, requested.id]);
    } finally {
      await store.close();
    }
    const db = openSqliteDatabase(file, { readonly: true });
    try {
      expect(db.prepare('SELECT count(*) AS n FROM outbox').get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });

  it('migrates a version-1 database: tokens kept, published rows and plaintext token events gone', async () => {
    const file = freshFile();
    // The version-1 schema, as the previous code created it.
    const v1 = openMigratedSqlite(file, {
      component: 'auth.accounts',
      label: 'auth accounts v1',
      migrations: [
        `
        CREATE TABLE accounts (
          id TEXT PRIMARY KEY NOT NULL, email TEXT NOT NULL UNIQUE COLLATE NOCASE, password_hash TEXT NOT NULL,
          email_verified INTEGER NOT NULL CHECK (email_verified IN (0, 1)),
          roles TEXT NOT NULL CHECK (json_valid(roles) AND json_type(roles) = 'array'),
          created_at TEXT NOT NULL, updated_at TEXT NOT NULL, password_changed_at TEXT NOT NULL
        ) STRICT;
        CREATE TABLE one_time_tokens (
          hash TEXT PRIMARY KEY NOT NULL,
          purpose TEXT NOT NULL CHECK (purpose IN ('password_reset', 'email_verification')),
          account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
          created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT NULL
        ) STRICT;
        CREATE INDEX one_time_tokens_account ON one_time_tokens (account_id);
        CREATE INDEX one_time_tokens_expires_at ON one_time_tokens (expires_at);
        ${SQLITE_OUTBOX_SCHEMA}
        `,
      ],
    });
    const account = makeAccount();
    const { token } = makeToken(account.id);
    const insertOutbox = v1.prepare(
      'INSERT INTO outbox (id, type, payload, created_at, published_at) VALUES (?, ?, ?, ?, ?)',
    );
    const plaintext = {
      id: uuidv7(),
      type: 'aiva.auth.password_reset.requested.v1',
      occurredAt: new Date().toISOString(),
      source: 'auth',
      data: {
        userId: account.id,
        email: account.email,
        token: 'P'.repeat(43),
        expiresAt: new Date().toISOString(),
      },
    };
    const sealedOne = {
      ...plaintext,
      id: uuidv7(),
      data: { ...plaintext.data, token: seal('S'.repeat(43), sealingKeys([generateSealingKey()])) },
    };
    const registered = registeredEvent(account);
    const published = createEvent('aiva.auth.user.registered.v1', 'auth', registered.data);
    const now = new Date().toISOString();
    v1.prepare(`INSERT INTO accounts VALUES (@id, @email, 'h', 0, '["user"]', @at, @at, @at)`).run({
      id: account.id,
      email: account.email,
      at: now,
    });
    v1.prepare(
      `INSERT INTO one_time_tokens (hash, purpose, account_id, created_at, expires_at, used_at)
       VALUES (?, 'password_reset', ?, ?, ?, NULL)`,
    ).run(token.hash, account.id, token.createdAt.toISOString(), token.expiresAt.toISOString());
    insertOutbox.run(plaintext.id, plaintext.type, JSON.stringify(plaintext), now, null);
    insertOutbox.run(sealedOne.id, sealedOne.type, JSON.stringify(sealedOne), now, null);
    insertOutbox.run(registered.id, registered.type, JSON.stringify(registered), now, null);
    insertOutbox.run(published.id, published.type, JSON.stringify(published), now, now);
    v1.close();

    const store = openSqliteAccountStore({ file });
    try {
      expect((await store.pendingEvents(10)).map((e) => e.id)).toEqual([sealedOne.id, registered.id]);
      expect(await store.consumeToken(token.hash, 'password_reset', new Date())).toEqual(token);
    } finally {
      await store.close();
    }
    const db = openSqliteDatabase(file, { readonly: true });
    try {
      const rows = db.prepare<[], { payload: string }>('SELECT payload FROM outbox').all();
      expect(rows.map((r) => r.payload).join()).not.toContain('P'.repeat(43));
      expect(rows).toHaveLength(2);
    } finally {
      db.close();
    }
  });

  it('refuses a database whose schema is newer than the code', async () => {
    const file = freshFile();
    await openSqliteAccountStore({ file }).close();
    const db = openSqliteDatabase(file);
    db.prepare("UPDATE schema_migrations SET version = 99 WHERE component = 'auth.accounts'").run();
    db.close();
    expect(() => openSqliteAccountStore({ file })).toThrow(/newer than this code/);
  });

  it('does not write the account when its event cannot be stored', async () => {
    const store = openSqliteAccountStore({ file: ':memory:' });
    try {
      const first = makeAccount();
      const event = registeredEvent(first);
      await store.insert(first, [event]);
      const second = makeAccount();
      // Reusing an event id violates the outbox's unique id: the whole transaction must roll back.
      await expect(store.insert(second, [event])).rejects.toThrow();
      expect(await store.findById(second.id)).toBeNull();
      expect(await store.findByEmail(second.email)).toBeNull();
      expect(await store.pendingEvents(10)).toEqual([event]);

      const { token } = makeToken(first.id);
      await expect(store.insertToken(token, [event])).rejects.toThrow();
      expect(await store.consumeToken(token.hash, token.purpose, new Date())).toBeNull();
    } finally {
      await store.close();
    }
  });

  it('lets exactly one of two connections consume a token', async () => {
    const file = freshFile();
    const a = openSqliteAccountStore({ file });
    const b = openSqliteAccountStore({ file });
    try {
      const account = makeAccount();
      await a.insert(account, []);
      const { token } = makeToken(account.id);
      await a.insertToken(token, []);
      const now = new Date();
      const results = await Promise.all([
        a.consumeToken(token.hash, token.purpose, now),
        b.consumeToken(token.hash, token.purpose, now),
        b.consumeToken(token.hash, token.purpose, now),
      ]);
      expect(results.filter((r) => r !== null)).toHaveLength(1);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
