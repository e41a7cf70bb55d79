import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteDatabase } from '@aiva/shared';
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
        { component: 'auth.accounts', version: 1 },
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
          { component: 'auth.accounts', version: 1 },
          { component: 'auth.sessions', version: 1 },
        ],
      );
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
