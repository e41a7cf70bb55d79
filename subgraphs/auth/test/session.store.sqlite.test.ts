import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteDatabase } from '@aiva/shared';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteSessionStore } from '../src/store/session-sqlite.js';
import { makeSession, newHash, sessionStoreContract } from './session.store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'aiva-auth-sessions-sqlite-'));
let n = 0;
const freshFile = () => join(dir, `db-${++n}`, 'sessions.sqlite');

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

sessionStoreContract('sqlite (file)', async () => openSqliteSessionStore({ file: freshFile() }));
sessionStoreContract('sqlite (:memory:)', async () => openSqliteSessionStore({ file: ':memory:' }));

describe('SQLite session store', () => {
  it('keeps sessions across close and reopen', async () => {
    const file = freshFile();
    const store = openSqliteSessionStore({ file });
    const session = makeSession();
    await store.create(session);
    const next = newHash();
    const rotated = await store.rotate(session.id, session.tokenHash, next, new Date());
    await store.close();

    const reopened = openSqliteSessionStore({ file });
    try {
      expect(await reopened.get(session.id)).toEqual(rotated);
    } finally {
      await reopened.close();
    }
  });

  it('lets exactly one of two connections rotate with the same hash', async () => {
    const file = freshFile();
    const a = openSqliteSessionStore({ file });
    const b = openSqliteSessionStore({ file });
    try {
      const session = makeSession();
      await a.create(session);
      const now = new Date();
      const results = await Promise.all([
        a.rotate(session.id, session.tokenHash, newHash(), now),
        b.rotate(session.id, session.tokenHash, newHash(), now),
      ]);
      expect(results.filter((r) => r !== null)).toHaveLength(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('deletes expired sessions when creating others', async () => {
    const file = freshFile();
    const store = openSqliteSessionStore({ file });
    try {
      const expired = makeSession({ expiresAt: new Date(Date.now() - 1000) }, 60_000);
      await store.create(expired); // the first create of a store runs the cleanup before its insert
      expect(await store.get(expired.id)).not.toBeNull();
      await store.close();

      const again = openSqliteSessionStore({ file });
      try {
        const live = makeSession();
        await again.create(live);
        expect(await again.get(expired.id)).toBeNull();
        expect(await again.get(live.id)).toEqual(live);
      } finally {
        await again.close();
      }
    } finally {
      await store.close();
    }
  });

  it('records its schema version by name, not in user_version', async () => {
    const file = freshFile();
    await openSqliteSessionStore({ file }).close();
    const db = openSqliteDatabase(file, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(0);
      expect(db.prepare('SELECT component, version FROM schema_migrations').all()).toEqual([
        { component: 'auth.sessions', version: 1 },
      ]);
    } finally {
      db.close();
    }
  });
});
