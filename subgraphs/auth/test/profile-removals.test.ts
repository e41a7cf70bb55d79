import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AivaError, createLogger, notFound, uuidv7 } from '@aiva/shared';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProfileClient } from '../src/profile.client.js';
import { ProfileRemovals } from '../src/profile-removals.js';
import type { AccountStore } from '../src/store/account.store.js';
import { openSqliteAccountStore } from '../src/store/account-sqlite.js';

const logger = createLogger('profile-removals-test', { level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'aiva-profile-removals-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A users service that is up or down, and remembers the profiles it removed. */
function fakeUsers() {
  const state = { up: false, removed: [] as string[], gone: new Set<string>() };
  const client: ProfileClient = {
    create: async () => ({ id: uuidv7() }),
    remove: async (id) => {
      if (!state.up) throw new AivaError('INTERNAL_SERVER_ERROR', 'The users service is unavailable');
      if (state.gone.has(id)) throw notFound('No user with this id', { field: 'id' });
      state.removed.push(id);
      state.gone.add(id);
    },
  };
  return { state, client };
}

describe('ProfileRemovals', () => {
  it('records a failed undo, survives a restart, backs off, and completes once users answers', async () => {
    const file = join(dir, 'auth.sqlite');
    let now = new Date('2024-06-01T00:00:00.000Z');
    const users = fakeUsers();
    const store = openSqliteAccountStore({ file });
    const removals = new ProfileRemovals(store, users.client, { retrySeconds: 10, logger, now: () => now });
    const id = uuidv7();
    await removals.enqueue(id);
    expect(await store.pendingProfileRemovals()).toEqual([
      {
        userId: id,
        createdAt: now,
        attempts: 1,
        nextAttemptAt: new Date(now.getTime() + 10_000),
        lastError: 'The users service is unavailable',
      },
    ]);
    await store.close();

    // Another process (after a restart) picks it up from the store.
    const reopened: AccountStore = openSqliteAccountStore({ file });
    try {
      const again = new ProfileRemovals(reopened, users.client, { retrySeconds: 10, logger, now: () => now });
      expect(await again.runDue()).toBe(0); // not due yet
      now = new Date(now.getTime() + 10_000);
      expect(await again.runDue()).toBe(0); // due, users still down: attempt 2, next in 20 s
      expect((await reopened.pendingProfileRemovals())[0]).toMatchObject({
        attempts: 2,
        nextAttemptAt: new Date(now.getTime() + 20_000),
      });
      users.state.up = true;
      now = new Date(now.getTime() + 20_000);
      expect(await again.runDue()).toBe(1);
      expect(users.state.removed).toEqual([id]);
      expect(await reopened.pendingProfileRemovals()).toEqual([]);
    } finally {
      await reopened.close();
    }
  });

  it('counts a profile that is already gone as done', async () => {
    const store = openSqliteAccountStore({ file: ':memory:' });
    try {
      const users = fakeUsers();
      users.state.up = true;
      const id = uuidv7();
      users.state.gone.add(id);
      await new ProfileRemovals(store, users.client, { retrySeconds: 1, logger }).enqueue(id);
      expect(await store.pendingProfileRemovals()).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('keeps an undo in memory while its own store fails, and records it later', async () => {
    const store = openSqliteAccountStore({ file: ':memory:' });
    try {
      const users = fakeUsers();
      const failing = Object.create(store) as AccountStore;
      let storeDown = true;
      failing.addProfileRemoval = async (...args) => {
        if (storeDown) throw new Error('database is locked');
        return store.addProfileRemoval(...args);
      };
      const removals = new ProfileRemovals(failing, users.client, { retrySeconds: 1, logger });
      const id = uuidv7();
      await removals.enqueue(id);
      expect(await store.pendingProfileRemovals()).toEqual([]);
      storeDown = false;
      await removals.runDue(); // recorded now (users still down: attempted and rescheduled)
      expect((await store.pendingProfileRemovals()).map((r) => r.userId)).toEqual([id]);
      users.state.up = true;
      await store.claimProfileRemovals(new Date(Date.now() + 3_600_000), new Date(0), 10); // make it due
      expect(await removals.runDue()).toBe(1);
      expect(users.state.removed).toEqual([id]);
    } finally {
      await store.close();
    }
  });
});
