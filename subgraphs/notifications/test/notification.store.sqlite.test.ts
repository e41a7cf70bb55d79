import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { uuidv7 } from '@aiva/shared';
import { race, startRacer } from '@aiva/shared/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteNotificationStore } from '../src/store/sqlite.js';
import {
  at,
  makeDelivery,
  makeNotification,
  notificationStoreContract,
  personId,
  queue,
  T0,
} from './notification.store.contract.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(HERE, '../../..');
const CLAIMER = join(HERE, 'notification.store.claimer.ts');

const dir = mkdtempSync(join(tmpdir(), 'aiva-notifications-sqlite-'));
let n = 0;
/** A fresh database file (in a not-yet-existing subdirectory, which the store must create). */
const freshFile = () => join(dir, `db-${++n}`, 'notifications.sqlite');

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let file = '';
notificationStoreContract('sqlite (file)', {
  async open() {
    file = freshFile();
    return openSqliteNotificationStore({ file });
  },
  // A second connection to the same file: another instance of the subgraph.
  openPeer: async () => openSqliteNotificationStore({ file }),
});

/** A claimer process (see notification.store.claimer.ts), started and waiting for the start. */
const startClaimer = (database: string, now: Date, batch: number) =>
  startRacer<string[]>(CLAIMER, [database, now.toISOString(), String(batch)], { cwd: REPO_ROOT });

describe('SQLite notification store', () => {
  it('gives each delivery to exactly one of two worker processes claiming at the same time', async () => {
    const database = freshFile();
    const store = openSqliteNotificationStore({ file: database });
    const userId = personId();
    const queued = Array.from({ length: 2000 }, (_, i) =>
      makeDelivery(userId, null, { nextAttemptAt: at(-(i % 13) * 1000) }),
    );
    try {
      for (let i = 0; i < queued.length; i += 100) await queue(store, queued.slice(i, i + 100));
    } finally {
      await store.close();
    }

    // Both are started and ready, then begin at one instant: they claim in small batches at the same time.
    const [a, b] = await race(
      await Promise.all([startClaimer(database, T0, 2), startClaimer(database, T0, 2)]),
    );

    const all = [...(a ?? []), ...(b ?? [])];
    expect(new Set(all).size).toBe(all.length);
    expect([...all].sort()).toEqual(queued.map((d) => d.id).sort());
  });

  it('keeps notifications, deliveries with their holds and processed events across close and reopen', async () => {
    const database = freshFile();
    const userId = personId();
    const notification = makeNotification(userId);
    const delivery = makeDelivery(userId, notification.id);
    const eventId = uuidv7();
    const store = openSqliteNotificationStore({ file: database });
    await store.applyEvent('notifications.test', eventId, { notification, deliveries: [delivery] });
    expect(await store.claimDueDeliveries(T0, at(60_000), 10)).toEqual([delivery]);
    await store.close();

    const reopened = openSqliteNotificationStore({ file: database });
    try {
      expect(await reopened.findNotification(userId, notification.id)).toEqual(notification);
      expect(await reopened.claimDueDeliveries(at(1000), at(60_000), 10)).toEqual([]); // still held
      expect(await reopened.claimDueDeliveries(at(60_000), at(120_000), 10)).toEqual([delivery]);
      expect(await reopened.applyEvent('notifications.test', eventId, { deliveries: [] })).toBe(false);
    } finally {
      await reopened.close();
    }
  });

  it('writes nothing of an event whose effects cannot all be written, and can apply it later', async () => {
    const store = openSqliteNotificationStore({ file: ':memory:' });
    try {
      const userId = personId();
      const queuedBefore = makeDelivery(userId, null);
      await queue(store, [queuedBefore]);
      const notification = makeNotification(userId);
      const fresh = makeDelivery(userId, notification.id);
      const eventId = uuidv7();
      // The second delivery reuses an existing id: the whole event must roll back.
      const failing = {
        notification,
        deliveries: [fresh, { ...queuedBefore, notificationId: notification.id }],
        contact: { userId, email: 'ada@example.com', at: T0 },
      };
      await expect(store.applyEvent('notifications.test', eventId, failing)).rejects.toThrow();
      expect(await store.findNotification(userId, notification.id)).toBeNull();
      expect(await store.deliveries({ userId })).toEqual([queuedBefore]);
      expect(await store.contact(userId)).toBeNull();

      // The event was not recorded as processed: its redelivery (with effects that fit) is applied.
      expect(
        await store.applyEvent('notifications.test', eventId, { notification, deliveries: [fresh] }),
      ).toBe(true);
      expect(await store.deliveries({ notificationId: notification.id })).toEqual([fresh]);
    } finally {
      await store.close();
    }
  });
});
