import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteDatabase } from '@aiva/shared';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteUserStore } from '../src/store/sqlite.js';
import { createdEvent, makeUser, updatedEvent, userStoreContract } from './user.store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'aiva-users-sqlite-'));
let n = 0;
/** A fresh database file (in a not-yet-existing subdirectory, which the store must create). */
const freshFile = () => join(dir, `db-${++n}`, 'users.sqlite');

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

userStoreContract('sqlite (file)', async () => openSqliteUserStore({ file: freshFile() }));
userStoreContract('sqlite (:memory:)', async () => openSqliteUserStore({ file: ':memory:' }));

describe('SQLite user store', () => {
  it('keeps users and pending events across close and reopen', async () => {
    const file = freshFile();
    const store = openSqliteUserStore({ file });
    const user = makeUser({ displayName: 'Persisted' });
    const event = createdEvent(user);
    await store.insert(user, event);
    await store.close();

    const reopened = openSqliteUserStore({ file });
    try {
      expect(await reopened.findById(user.id)).toEqual(user);
      expect(await reopened.count()).toBe(1);
      expect(await reopened.pendingEvents(10)).toEqual([event]);
      // Unique indexes survive too (the migration is not re-run on an existing schema).
      const dup = makeUser({ email: user.email.toUpperCase() });
      await expect(reopened.insert(dup, createdEvent(dup))).rejects.toMatchObject({
        extensions: { field: 'email' },
      });
      const updatedAt = new Date(user.createdAt.getTime() + 1000);
      await reopened.update(user.id, { firstName: 'Later' }, updatedAt, updatedEvent(['firstName']));
    } finally {
      await reopened.close();
    }

    const third = openSqliteUserStore({ file });
    try {
      expect(await third.findById(user.id)).toMatchObject({ firstName: 'Later', displayName: 'Persisted' });
      expect((await third.pendingEvents(10)).map((e) => e.type)).toEqual([
        'aiva.users.user.created.v1',
        'aiva.users.user.updated.v1',
      ]);
    } finally {
      await third.close();
    }
  });

  it('uses WAL, NORMAL sync and a migrated schema for a file database', async () => {
    const file = freshFile();
    const store = openSqliteUserStore({ file });
    await store.close();

    const db = openSqliteDatabase(file, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal'); // persistent in the file
      expect(db.pragma('user_version', { simple: true })).toBe(3);
      const indexes = db
        .prepare<[], { name: string; sql: string | null }>(
          "SELECT name, sql FROM sqlite_master WHERE type = 'index'",
        )
        .all();
      const sqlOf = (name: string) => indexes.find((i) => i.name === name)?.sql ?? '';
      expect(sqlOf('users_email_nocase')).toMatch(/UNIQUE INDEX.*email COLLATE NOCASE/i);
      expect(sqlOf('users_username_nocase')).toMatch(/UNIQUE INDEX.*username COLLATE NOCASE/i);
    } finally {
      db.close();
    }
  });

  it('rolls back the state change when the event cannot be built', async () => {
    const store = openSqliteUserStore({ file: ':memory:' });
    try {
      const user = makeUser();
      await store.insert(user, createdEvent(user));
      const failing = () => {
        throw new Error('boom');
      };
      await expect(store.update(user.id, { firstName: 'Nope' }, new Date(), failing)).rejects.toThrow('boom');
      await expect(store.remove(user.id, failing)).rejects.toThrow('boom');
      expect(await store.findById(user.id)).toEqual(user);
      expect(await store.pendingEvents(10)).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  it('does not write the user when its event cannot be stored', async () => {
    const store = openSqliteUserStore({ file: ':memory:' });
    try {
      const first = makeUser();
      const event = createdEvent(first);
      await store.insert(first, event);
      const second = makeUser();
      // Reusing an event id violates the outbox's unique id: the whole transaction must roll back.
      await expect(store.insert(second, event)).rejects.toThrow();
      expect(await store.findById(second.id)).toBeNull();
      expect(await store.count()).toBe(1);
    } finally {
      await store.close();
    }
  });
});
