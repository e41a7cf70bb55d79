import { uuidv7 } from '@aiva/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  DeliveryRecord,
  EventEffects,
  NotificationRecord,
  NotificationStore,
  PreferenceRecord,
  PushSubscriptionRecord,
} from '../src/store/notification.store.js';

/** How a contract run gets its stores. */
export interface NotificationStoreHarness {
  /** A fresh, empty store (on a database of its own); the contract closes it after each test. */
  open(): Promise<NotificationStore>;
  /**
   * Another connection to the database of the store `open` returned last: a second instance of the subgraph
   * (another delivery worker). The contract closes it after the test.
   */
  openPeer(): Promise<NotificationStore>;
}

const CONSUMER = 'notifications.test';
/** A fixed clock origin; every timestamp of the suite is at millisecond precision. */
export const T0 = new Date('2030-01-02T03:04:05.678Z');
/** `T0` plus `ms`. */
export const at = (ms: number) => new Date(T0.getTime() + ms);
const SECOND = 1000;
const MINUTE = 60 * SECOND;

/** A fresh person id. */
export const personId = () => uuidv7();

/** An unread in-app notification of `userId`, created at `T0` (ids are UUIDv7: later calls are newer). */
export function makeNotification(
  userId: string,
  overrides: Partial<NotificationRecord> = {},
): NotificationRecord {
  return {
    id: uuidv7(),
    userId,
    category: 'activity',
    title: 'Someone mentioned you',
    body: 'Ada mentioned you in a comment',
    data: { link: '/comments/1', count: 2, nested: { ok: true } },
    readAt: null,
    createdAt: T0,
    ...overrides,
  };
}

/** A queued email delivery of `userId`, due at `T0`. */
export function makeDelivery(
  userId: string,
  notificationId: string | null,
  overrides: Partial<DeliveryRecord> = {},
): DeliveryRecord {
  return {
    id: uuidv7(),
    userId,
    notificationId,
    channel: 'email',
    target: `${userId}@example.com`,
    message: { template: 'activity', values: { name: 'Ada', link: '/comments/1' } },
    status: 'queued',
    attempts: 0,
    lastError: null,
    nextAttemptAt: T0,
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

/** Applies `effects` as a fresh event of the test consumer; returns its event id. */
export async function applyFresh(store: NotificationStore, effects: EventEffects): Promise<string> {
  const eventId = uuidv7();
  expect(await store.applyEvent(CONSUMER, eventId, effects)).toBe(true);
  return eventId;
}

/** Stores a notification of `userId` (with `deliveries` of it, when given) through an event. */
export async function notify(
  store: NotificationStore,
  userId: string,
  options: { notification?: Partial<NotificationRecord>; deliveries?: number } = {},
): Promise<{ notification: NotificationRecord; deliveries: DeliveryRecord[] }> {
  const notification = makeNotification(userId, options.notification);
  const deliveries = Array.from({ length: options.deliveries ?? 0 }, () =>
    makeDelivery(userId, notification.id),
  );
  await applyFresh(store, { notification, deliveries });
  return { notification, deliveries };
}

/** Queues deliveries (no notification) through an event. */
export async function queue(store: NotificationStore, deliveries: DeliveryRecord[]): Promise<void> {
  await applyFresh(store, { deliveries });
}

const ids = (records: ReadonlyArray<{ id: string }>) => records.map((r) => r.id);
const byKey = (p: PreferenceRecord) => `${p.userId}/${p.category}/${p.channel}`;
const sortedPreferences = (list: PreferenceRecord[]) =>
  [...list].sort((a, b) => byKey(a).localeCompare(byKey(b)));

/** Claims with a one-minute hold from `now` (as the dispatcher does) and returns the ids. */
async function claimIds(store: NotificationStore, now: Date, limit = 100): Promise<string[]> {
  return ids(await store.claimDueDeliveries(now, new Date(now.getTime() + MINUTE), limit));
}

/**
 * The behaviour every NotificationStore adapter must have. `harness.open` returns a fresh, empty store; the
 * contract closes it (and any peer) after each test.
 */
export function notificationStoreContract(name: string, harness: NotificationStoreHarness): void {
  describe(`NotificationStore contract: ${name}`, () => {
    let store: NotificationStore;
    const peers: NotificationStore[] = [];

    beforeEach(async () => {
      store = await harness.open();
    });

    afterEach(async () => {
      await Promise.all(peers.splice(0).map((peer) => peer.close()));
      await store.close();
    });

    const openPeer = async () => {
      const peer = await harness.openPeer();
      peers.push(peer);
      return peer;
    };

    it('starts empty, answers ping and has an empty outbox', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
      const userId = personId();
      expect(await store.listNotifications(userId, { first: 10, unreadOnly: false })).toEqual({
        notifications: [],
        hasNextPage: false,
      });
      expect(await store.countUnread(userId)).toBe(0);
      expect(await store.preferences(userId)).toEqual([]);
      expect(await store.contact(userId)).toBeNull();
      expect(await store.pushSubscriptions(userId)).toEqual([]);
      expect(await store.deliveries({ userId })).toEqual([]);
      expect(await store.claimDueDeliveries(at(MINUTE), at(2 * MINUTE), 10)).toEqual([]);
      expect(await store.pendingEvents(10)).toEqual([]);
    });

    it('writes an event’s notification, deliveries and contact together, once per (consumer, event)', async () => {
      const userId = personId();
      const notification = makeNotification(userId);
      const deliveries = [
        makeDelivery(userId, notification.id),
        makeDelivery(userId, notification.id, { channel: 'push', target: 'https://push.example/ep1' }),
      ];
      const contact = { userId, email: 'ada@example.com', at: at(SECOND) };
      const eventId = uuidv7();

      expect(await store.applyEvent(CONSUMER, eventId, { notification, deliveries, contact })).toBe(true);
      expect(await store.findNotification(userId, notification.id)).toEqual(notification);
      expect(await store.deliveries({ notificationId: notification.id })).toEqual(deliveries);
      expect(await store.contact(userId)).toEqual({
        userId,
        email: 'ada@example.com',
        smsNumber: null,
        updatedAt: at(SECOND),
      });

      // The same event again (a redelivery), even with other effects: nothing is written.
      const other = makeNotification(userId);
      const duplicate: EventEffects = {
        notification: other,
        deliveries: [makeDelivery(userId, other.id)],
        contact: { userId, email: 'other@example.com', at: at(2 * SECOND) },
      };
      expect(await store.applyEvent(CONSUMER, eventId, duplicate)).toBe(false);
      expect(await store.findNotification(userId, other.id)).toBeNull();
      expect(await store.deliveries({ userId })).toEqual(deliveries);
      expect((await store.contact(userId))?.email).toBe('ada@example.com');
      expect(await store.countUnread(userId)).toBe(1);

      // Another consumer of the same event is another (consumer, event).
      expect(await store.applyEvent('notifications.other', eventId, duplicate)).toBe(true);
      expect(await store.findNotification(userId, other.id)).toEqual(other);
      expect((await store.contact(userId))?.email).toBe('other@example.com');
    });

    it('round-trips JSON values and dates as they were given', async () => {
      const userId = personId();
      const empty = makeNotification(userId, { data: {}, category: 'welcome' });
      const none = makeNotification(userId, { data: null, title: '', body: '' });
      const read = makeNotification(userId, {
        data: { list: [1, 'two', { three: null }], unicode: 'Grüße 👋' },
        readAt: at(5 * SECOND),
        createdAt: at(SECOND),
      });
      const delivery = makeDelivery(userId, null, {
        channel: 'sms',
        target: '+15550100',
        message: { template: 'code', values: {} },
        nextAttemptAt: at(-MINUTE),
      });
      for (const notification of [empty, none, read])
        await applyFresh(store, { notification, deliveries: [] });
      await queue(store, [delivery]);

      for (const notification of [empty, none, read]) {
        const found = await store.findNotification(userId, notification.id);
        expect(found).toEqual(notification);
        expect(found?.createdAt).toBeInstanceOf(Date);
      }
      expect((await store.findNotification(userId, read.id))?.readAt?.getTime()).toBe(
        at(5 * SECOND).getTime(),
      );
      expect(await store.deliveries({ userId })).toEqual([delivery]);
    });

    it('lists a person’s notifications newest first, page by page, never anyone else’s', async () => {
      const ada = personId();
      const bob = personId();
      const adas: NotificationRecord[] = [];
      const bobs: NotificationRecord[] = [];
      for (let i = 0; i < 7; i++) {
        adas.push((await notify(store, ada)).notification);
        if (i % 2 === 0) bobs.push((await notify(store, bob)).notification);
      }
      const newestFirst = ids(adas).reverse();

      const pages: string[][] = [];
      const more: boolean[] = [];
      let beforeId: string | undefined;
      for (let guard = 0; guard < 5; guard++) {
        const page = await store.listNotifications(ada, {
          first: 3,
          unreadOnly: false,
          ...(beforeId === undefined ? {} : { beforeId }),
        });
        pages.push(ids(page.notifications));
        more.push(page.hasNextPage);
        if (!page.hasNextPage) break;
        beforeId = page.notifications.at(-1)?.id;
      }
      expect(pages).toEqual([newestFirst.slice(0, 3), newestFirst.slice(3, 6), newestFirst.slice(6)]);
      expect(more).toEqual([true, true, false]);

      // Records come back whole; beforeId excludes that id and everything newer.
      const first = await store.listNotifications(ada, { first: 1, unreadOnly: false });
      expect(first.notifications).toEqual([adas.at(-1)]);
      const tail = await store.listNotifications(ada, {
        first: 10,
        beforeId: newestFirst[4],
        unreadOnly: false,
      });
      expect(ids(tail.notifications)).toEqual(newestFirst.slice(5));
      expect(tail.hasNextPage).toBe(false);
      // An exact page has no next page.
      expect((await store.listNotifications(ada, { first: 7, unreadOnly: false })).hasNextPage).toBe(false);
      expect((await store.listNotifications(ada, { first: 6, unreadOnly: false })).hasNextPage).toBe(true);

      // Bob's list is his alone, even past one of Ada's ids.
      const bobsList = await store.listNotifications(bob, { first: 10, unreadOnly: false });
      expect(ids(bobsList.notifications)).toEqual(ids(bobs).reverse());
      const past = await store.listNotifications(bob, {
        first: 10,
        beforeId: newestFirst[0],
        unreadOnly: false,
      });
      expect(ids(past.notifications)).toEqual(
        ids(bobs)
          .reverse()
          .filter((id) => id < (newestFirst[0] ?? '')),
      );
      expect(await store.listNotifications(personId(), { first: 10, unreadOnly: false })).toEqual({
        notifications: [],
        hasNextPage: false,
      });
    });

    it('lists only unread ones with unreadOnly, and counts them', async () => {
      const ada = personId();
      const bob = personId();
      const adas: NotificationRecord[] = [];
      for (let i = 0; i < 6; i++) adas.push((await notify(store, ada)).notification);
      await notify(store, bob);
      const [n0, n1, n2, n3, n4, n5] = adas as [
        NotificationRecord,
        NotificationRecord,
        NotificationRecord,
        NotificationRecord,
        NotificationRecord,
        NotificationRecord,
      ];
      await store.markRead(ada, n1.id, at(SECOND));
      await store.markRead(ada, n4.id, at(SECOND));

      expect(await store.countUnread(ada)).toBe(4);
      expect(await store.countUnread(bob)).toBe(1);
      const unread = await store.listNotifications(ada, { first: 10, unreadOnly: true });
      expect(ids(unread.notifications)).toEqual([n5.id, n3.id, n2.id, n0.id]);
      expect(unread.hasNextPage).toBe(false);
      expect(unread.notifications.every((n) => n.readAt === null)).toBe(true);

      const page1 = await store.listNotifications(ada, { first: 2, unreadOnly: true });
      expect(ids(page1.notifications)).toEqual([n5.id, n3.id]);
      expect(page1.hasNextPage).toBe(true);
      const page2 = await store.listNotifications(ada, { first: 2, beforeId: n3.id, unreadOnly: true });
      expect(ids(page2.notifications)).toEqual([n2.id, n0.id]);
      expect(page2.hasNextPage).toBe(false);
      // beforeId may be a read one.
      const afterRead = await store.listNotifications(ada, { first: 10, beforeId: n4.id, unreadOnly: true });
      expect(ids(afterRead.notifications)).toEqual([n3.id, n2.id, n0.id]);

      const all = await store.listNotifications(ada, { first: 10, unreadOnly: false });
      expect(all.notifications).toHaveLength(6);
    });

    it('finds a notification only for its person', async () => {
      const ada = personId();
      const { notification } = await notify(store, ada);
      expect(await store.findNotification(ada, notification.id)).toEqual(notification);
      expect(await store.findNotification(personId(), notification.id)).toBeNull();
      expect(await store.findNotification(ada, uuidv7())).toBeNull();
    });

    it('marks a person’s own notification read once, keeping the first readAt', async () => {
      const ada = personId();
      const bob = personId();
      const { notification } = await notify(store, ada);
      const { notification: other } = await notify(store, ada);

      // Someone else's: null, and nothing changes.
      expect(await store.markRead(bob, notification.id, at(SECOND))).toBeNull();
      expect((await store.findNotification(ada, notification.id))?.readAt).toBeNull();
      expect(await store.markRead(ada, uuidv7(), at(SECOND))).toBeNull();

      const read = await store.markRead(ada, notification.id, at(SECOND));
      expect(read).toEqual({ ...notification, readAt: at(SECOND) });
      expect(read?.readAt).toBeInstanceOf(Date);
      const again = await store.markRead(ada, notification.id, at(MINUTE));
      expect(again).toEqual({ ...notification, readAt: at(SECOND) });
      expect(await store.findNotification(ada, notification.id)).toEqual({
        ...notification,
        readAt: at(SECOND),
      });
      expect(await store.findNotification(ada, other.id)).toEqual(other);
      expect(await store.countUnread(ada)).toBe(1);
    });

    it('marks all of a person’s unread notifications read and says how many', async () => {
      const ada = personId();
      const bob = personId();
      const adas: NotificationRecord[] = [];
      for (let i = 0; i < 4; i++) adas.push((await notify(store, ada)).notification);
      await notify(store, bob);
      const [early] = adas as [NotificationRecord];
      await store.markRead(ada, early.id, at(SECOND));

      expect(await store.markAllRead(ada, at(MINUTE))).toBe(3);
      expect(await store.countUnread(ada)).toBe(0);
      const listed = await store.listNotifications(ada, { first: 10, unreadOnly: false });
      const readAts = new Map(listed.notifications.map((n) => [n.id, n.readAt?.getTime()]));
      expect(readAts.get(early.id)).toBe(at(SECOND).getTime());
      for (const n of adas.slice(1)) expect(readAts.get(n.id)).toBe(at(MINUTE).getTime());
      expect(await store.countUnread(bob)).toBe(1);

      expect(await store.markAllRead(ada, at(2 * MINUTE))).toBe(0);
      expect(await store.markAllRead(personId(), at(2 * MINUTE))).toBe(0);
    });

    it('stores the preferences a person set, upserting each (category, channel)', async () => {
      const ada = personId();
      const bob = personId();
      await store.setPreferences([
        { userId: ada, category: 'activity', channel: 'email', enabled: false },
        { userId: ada, category: 'activity', channel: 'push', enabled: true },
        { userId: bob, category: 'product', channel: 'email', enabled: true },
      ]);
      expect(sortedPreferences(await store.preferences(ada))).toEqual([
        { userId: ada, category: 'activity', channel: 'email', enabled: false },
        { userId: ada, category: 'activity', channel: 'push', enabled: true },
      ]);

      await store.setPreferences([
        { userId: ada, category: 'activity', channel: 'email', enabled: true },
        { userId: ada, category: 'product', channel: 'sms', enabled: false },
      ]);
      await store.setPreferences([]);
      expect(sortedPreferences(await store.preferences(ada))).toEqual([
        { userId: ada, category: 'activity', channel: 'email', enabled: true },
        { userId: ada, category: 'activity', channel: 'push', enabled: true },
        { userId: ada, category: 'product', channel: 'sms', enabled: false },
      ]);
      expect(await store.preferences(bob)).toEqual([
        { userId: bob, category: 'product', channel: 'email', enabled: true },
      ]);
    });

    it('keeps push subscriptions: refreshed, moved to whoever subscribes, removed, forgotten', async () => {
      const ada = personId();
      const bob = personId();
      const subscription = (userId: string, endpoint: string, createdAt: Date): PushSubscriptionRecord => ({
        endpoint,
        userId,
        p256dh: `p256dh-${endpoint}`,
        auth: `auth-${endpoint}`,
        createdAt,
      });
      const ep1 = `https://push.example/${uuidv7()}`;
      const ep2 = `https://push.example/${uuidv7()}`;
      const first = subscription(ada, ep1, at(SECOND));
      const second = subscription(ada, ep2, at(2 * SECOND));
      await store.savePushSubscription(second);
      await store.savePushSubscription(first);
      expect(await store.pushSubscriptions(ada)).toEqual([first, second]);

      // The same browser again (new keys): refreshed, still one.
      const refreshed = { ...first, p256dh: 'new-key', auth: 'new-auth' };
      await store.savePushSubscription(refreshed);
      expect(await store.pushSubscriptions(ada)).toEqual([refreshed, second]);

      // Bob subscribes in that browser: it is his now.
      const moved = subscription(bob, ep1, at(3 * SECOND));
      await store.savePushSubscription(moved);
      expect(await store.pushSubscriptions(ada)).toEqual([second]);
      expect(await store.pushSubscriptions(bob)).toEqual([moved]);

      // One removes only one's own.
      expect(await store.removePushSubscription(ada, ep1)).toBe(false);
      expect(await store.pushSubscriptions(bob)).toEqual([moved]);
      expect(await store.removePushSubscription(bob, ep1)).toBe(true);
      expect(await store.removePushSubscription(bob, ep1)).toBe(false);
      expect(await store.pushSubscriptions(bob)).toEqual([]);

      // The push service says it is gone: forgotten, whoever it belonged to.
      await store.forgetPushEndpoint(ep2);
      await store.forgetPushEndpoint(`https://push.example/${uuidv7()}`);
      expect(await store.pushSubscriptions(ada)).toEqual([]);
    });

    it('keeps the email from events and the SMS number apart, each upserted on its own', async () => {
      const ada = personId();
      const bob = personId();
      await store.setSmsNumber(ada, '+15550100', at(SECOND));
      expect(await store.contact(ada)).toEqual({
        userId: ada,
        email: null,
        smsNumber: '+15550100',
        updatedAt: at(SECOND),
      });

      await applyFresh(store, {
        deliveries: [],
        contact: { userId: ada, email: 'ada@example.com', at: at(2 * SECOND) },
      });
      expect(await store.contact(ada)).toEqual({
        userId: ada,
        email: 'ada@example.com',
        smsNumber: '+15550100',
        updatedAt: at(2 * SECOND),
      });

      await applyFresh(store, {
        deliveries: [],
        contact: { userId: ada, email: 'ada@new.example', at: at(3 * SECOND) },
      });
      await store.setSmsNumber(ada, null, at(4 * SECOND));
      expect(await store.contact(ada)).toEqual({
        userId: ada,
        email: 'ada@new.example',
        smsNumber: null,
        updatedAt: at(4 * SECOND),
      });
      await store.setSmsNumber(ada, '+15550199', at(5 * SECOND));
      expect(await store.contact(ada)).toMatchObject({ email: 'ada@new.example', smsNumber: '+15550199' });

      await applyFresh(store, {
        deliveries: [],
        contact: { userId: bob, email: 'bob@example.com', at: at(SECOND) },
      });
      expect(await store.contact(bob)).toEqual({
        userId: bob,
        email: 'bob@example.com',
        smsNumber: null,
        updatedAt: at(SECOND),
      });
      expect(await store.contact(personId())).toBeNull();
    });

    it('claims only due deliveries still to send, oldest due first, up to the limit', async () => {
      const userId = personId();
      const d1 = makeDelivery(userId, null, { nextAttemptAt: at(-3 * MINUTE) });
      const d2 = makeDelivery(userId, null, { nextAttemptAt: at(-2 * MINUTE) });
      const d3 = makeDelivery(userId, null, { nextAttemptAt: at(-MINUTE) });
      const retrying = makeDelivery(userId, null, {
        status: 'retrying',
        attempts: 2,
        lastError: 'SMTP 451',
        nextAttemptAt: at(-30 * SECOND),
      });
      const dueNow = makeDelivery(userId, null, { nextAttemptAt: T0 });
      const later = makeDelivery(userId, null, { nextAttemptAt: at(30 * SECOND) });
      const sent = makeDelivery(userId, null, {
        status: 'sent',
        attempts: 1,
        nextAttemptAt: at(-5 * MINUTE),
      });
      const failed = makeDelivery(userId, null, {
        status: 'failed',
        attempts: 5,
        nextAttemptAt: at(-5 * MINUTE),
      });
      // Queued in another order than due.
      await queue(store, [later, d3, sent, d1, retrying, failed, dueNow, d2]);

      expect(await store.claimDueDeliveries(T0, at(MINUTE), 0)).toEqual([]);
      // Whole records, as they were queued.
      expect(await store.claimDueDeliveries(T0, at(MINUTE), 2)).toEqual([d1, d2]);
      expect(await claimIds(store, T0, 10)).toEqual([d3.id, retrying.id, dueNow.id]);
      expect(await claimIds(store, T0, 10)).toEqual([]);
      // A limit is a whole number of deliveries, at least 0.
      expect(await store.claimDueDeliveries(at(MINUTE), at(2 * MINUTE), -1)).toEqual([]);
      expect(ids(await store.claimDueDeliveries(at(MINUTE), at(2 * MINUTE), 1.7))).toEqual([d1.id]);
      // `later` once it is due (the others are still held); sent and failed ones never.
      expect(await claimIds(store, at(30 * SECOND - 1), 10)).toEqual([]);
      expect(await claimIds(store, at(30 * SECOND), 10)).toEqual([later.id]);
      expect(await claimIds(store, at(60 * MINUTE), 10)).toEqual(
        ids([d1, d2, d3, retrying, dueNow, later]), // every hold has ended by then
      );
    });

    it('holds a claimed delivery until its lease ends, for every connection', async () => {
      const peer = await openPeer();
      const userId = personId();
      const delivery = makeDelivery(userId, null);
      await queue(store, [delivery]);

      expect(await store.claimDueDeliveries(T0, at(MINUTE), 10)).toEqual([delivery]);
      expect(await peer.claimDueDeliveries(at(SECOND), at(2 * MINUTE), 10)).toEqual([]);
      expect(await store.claimDueDeliveries(at(MINUTE - 1), at(2 * MINUTE), 10)).toEqual([]);
      // The lease ended (the worker crashed): another takes it over, and holds it in turn.
      expect(await peer.claimDueDeliveries(at(MINUTE), at(3 * MINUTE), 10)).toEqual([delivery]);
      expect(await store.claimDueDeliveries(at(2 * MINUTE), at(4 * MINUTE), 10)).toEqual([]);
      expect(ids(await store.claimDueDeliveries(at(3 * MINUTE), at(4 * MINUTE), 10))).toEqual([delivery.id]);
    });

    it('gives each delivery to exactly one of two workers claiming at once', async () => {
      const peer = await openPeer();
      const userId = personId();
      const queued = Array.from({ length: 60 }, (_, i) =>
        makeDelivery(userId, null, { nextAttemptAt: at(-(i % 7) * SECOND) }),
      );
      await queue(store, queued.slice(0, 30));
      await queue(peer, queued.slice(30));

      const drain = async (worker: NotificationStore) => {
        const mine: string[] = [];
        for (let guard = 0; guard < 100; guard++) {
          const batch = await claimIds(worker, T0, 4);
          expect(batch.length).toBeLessThanOrEqual(4);
          if (batch.length === 0) break;
          mine.push(...batch);
        }
        return mine;
      };
      const [a, b] = await Promise.all([drain(store), drain(peer)]);

      const all = [...a, ...b];
      expect(new Set(all).size).toBe(all.length);
      expect([...all].sort()).toEqual(ids(queued).sort());
      expect(await claimIds(peer, T0)).toEqual([]);
    });

    it('records the outcome of an attempt and releases the hold', async () => {
      const userId = personId();
      const { notification, deliveries } = await notify(store, userId, { deliveries: 2 });
      const [first, second] = deliveries as [DeliveryRecord, DeliveryRecord];
      expect(await claimIds(store, T0)).toEqual([first.id, second.id]);

      // A transient failure due again at once: claimable at once, though the claim held it for a minute.
      await store.finishDelivery(
        first.id,
        { status: 'retrying', attempts: 1, lastError: 'SMTP 451 try later', nextAttemptAt: at(SECOND) },
        at(SECOND),
      );
      await store.finishDelivery(
        second.id,
        { status: 'sent', attempts: 1, lastError: null, nextAttemptAt: at(SECOND) },
        at(SECOND),
      );
      expect(await store.deliveries({ notificationId: notification.id })).toEqual([
        {
          ...first,
          status: 'retrying',
          attempts: 1,
          lastError: 'SMTP 451 try later',
          nextAttemptAt: at(SECOND),
          updatedAt: at(SECOND),
        },
        { ...second, status: 'sent', attempts: 1, nextAttemptAt: at(SECOND), updatedAt: at(SECOND) },
      ]);
      const [retried] = await store.claimDueDeliveries(at(2 * SECOND), at(MINUTE), 10);
      expect(retried).toMatchObject({
        id: first.id,
        status: 'retrying',
        attempts: 1,
        lastError: 'SMTP 451 try later',
      });

      // Given up: never claimed again.
      await store.finishDelivery(
        first.id,
        { status: 'failed', attempts: 2, lastError: 'SMTP 550 no such user', nextAttemptAt: at(3 * SECOND) },
        at(3 * SECOND),
      );
      expect(await claimIds(store, at(24 * 60 * MINUTE))).toEqual([]);
      expect(await store.deliveries({ notificationId: notification.id })).toMatchObject([
        { id: first.id, status: 'failed', attempts: 2, lastError: 'SMTP 550 no such user' },
        { id: second.id, status: 'sent' },
      ]);
    });

    it('purges sent and failed deliveries older than the retention, and keeps the rest', async () => {
      const userId = personId();
      const { notification, deliveries } = await notify(store, userId, { deliveries: 3 });
      const [sent, failed, queued] = deliveries as [DeliveryRecord, DeliveryRecord, DeliveryRecord];
      await store.finishDelivery(
        sent.id,
        { status: 'sent', attempts: 1, lastError: null, nextAttemptAt: at(SECOND) },
        at(SECOND),
      );
      await store.finishDelivery(
        failed.id,
        { status: 'failed', attempts: 1, lastError: 'SMTP 550', nextAttemptAt: at(MINUTE) },
        at(MINUTE),
      );
      // Only what was last changed before the cut goes; a delivery still to send never does.
      expect(await store.purgeDeliveries(at(2 * SECOND))).toBe(1);
      expect(ids(await store.deliveries({ notificationId: notification.id }))).toEqual([
        failed.id,
        queued.id,
      ]);
      expect(await store.purgeDeliveries(at(24 * 60 * MINUTE))).toBe(1);
      expect(ids(await store.deliveries({ notificationId: notification.id }))).toEqual([queued.id]);
    });

    it('brings a retrying delivery back when its next attempt is due', async () => {
      const userId = personId();
      const delivery = makeDelivery(userId, null);
      await queue(store, [delivery]);
      expect(await claimIds(store, T0)).toEqual([delivery.id]);
      await store.finishDelivery(
        delivery.id,
        { status: 'retrying', attempts: 1, lastError: 'timeout', nextAttemptAt: at(5 * MINUTE) },
        at(SECOND),
      );

      expect(await claimIds(store, at(2 * MINUTE))).toEqual([]); // the hold ended, but it is not due yet
      expect(await claimIds(store, at(5 * MINUTE - 1))).toEqual([]);
      expect(await store.claimDueDeliveries(at(5 * MINUTE), at(6 * MINUTE), 10)).toEqual([
        {
          ...delivery,
          status: 'retrying',
          attempts: 1,
          lastError: 'timeout',
          nextAttemptAt: at(5 * MINUTE),
          updatedAt: at(SECOND),
        },
      ]);
    });

    it('lists the delivery log of a notification or of a person, oldest first', async () => {
      const ada = personId();
      const bob = personId();
      const one = await notify(store, ada, { deliveries: 2 });
      const reset = makeDelivery(ada, null, {
        message: { template: 'password-reset', values: { token: 'sealed' } },
      });
      await queue(store, [reset]);
      const two = await notify(store, ada, { deliveries: 1 });
      const bobs = await notify(store, bob, { deliveries: 1 });

      expect(await store.deliveries({ userId: ada })).toEqual([...one.deliveries, reset, ...two.deliveries]);
      expect(await store.deliveries({ notificationId: one.notification.id })).toEqual(one.deliveries);
      expect(await store.deliveries({ notificationId: two.notification.id })).toEqual(two.deliveries);
      expect(await store.deliveries({ userId: bob })).toEqual(bobs.deliveries);
      expect(await store.deliveries({ userId: ada, notificationId: one.notification.id })).toEqual(
        one.deliveries,
      );
      expect(await store.deliveries({ userId: bob, notificationId: one.notification.id })).toEqual([]);
      expect(await store.deliveries({ notificationId: uuidv7() })).toEqual([]);
      expect(await store.deliveries({})).toEqual([]);
    });

    it('removes everything of a person and nobody else’s, once per event', async () => {
      const ada = personId();
      const bob = personId();
      const seed = async (userId: string) => {
        const { notification, deliveries } = await notify(store, userId, { deliveries: 2 });
        await applyFresh(store, {
          deliveries: [],
          contact: { userId, email: `${userId}@example.com`, at: T0 },
        });
        await store.setSmsNumber(userId, '+15550100', T0);
        await store.setPreferences([{ userId, category: 'activity', channel: 'push', enabled: true }]);
        const push: PushSubscriptionRecord = {
          endpoint: `https://push.example/${uuidv7()}`,
          userId,
          p256dh: 'key',
          auth: 'auth',
          createdAt: T0,
        };
        await store.savePushSubscription(push);
        return { notification, deliveries, push };
      };
      await seed(ada);
      const bobs = await seed(bob);
      const bobsContact = await store.contact(bob);
      const eventId = uuidv7();

      expect(await store.removePerson(CONSUMER, eventId, ada)).toBe(true);
      expect(await store.listNotifications(ada, { first: 10, unreadOnly: false })).toEqual({
        notifications: [],
        hasNextPage: false,
      });
      expect(await store.countUnread(ada)).toBe(0);
      expect(await store.preferences(ada)).toEqual([]);
      expect(await store.pushSubscriptions(ada)).toEqual([]);
      expect(await store.contact(ada)).toBeNull();
      expect(await store.deliveries({ userId: ada })).toEqual([]);
      // Bob's are all there, and only his deliveries are left to send.
      expect(await store.findNotification(bob, bobs.notification.id)).toEqual(bobs.notification);
      expect(await store.preferences(bob)).toHaveLength(1);
      expect(await store.pushSubscriptions(bob)).toEqual([bobs.push]);
      expect(await store.contact(bob)).toEqual(bobsContact);
      expect(await store.deliveries({ userId: bob })).toEqual(bobs.deliveries);
      expect((await claimIds(store, T0)).sort()).toEqual(ids(bobs.deliveries).sort());

      // The same event again removes nothing (here: what came for Ada since).
      const { notification: since } = await notify(store, ada);
      expect(await store.removePerson(CONSUMER, eventId, ada)).toBe(false);
      expect(await store.findNotification(ada, since.id)).toEqual(since);
      expect(await store.removePerson(CONSUMER, uuidv7(), ada)).toBe(true);
      expect(await store.findNotification(ada, since.id)).toBeNull();
    });

    it('closes idempotently', async () => {
      await store.close();
      await store.close();
      store = await harness.open(); // afterEach closes this one
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
