import { AivaError, type AivaEvent, createEvent, uuidv7 } from '@aiva/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { UserPatch, UserRecord, UserStore } from '../src/store/user.store.js';

const SOURCE = 'users';
let counter = 0;

/** A valid user with unique email/username, timestamps at millisecond precision. */
export function makeUser(overrides: Partial<UserRecord> = {}): UserRecord {
  counter++;
  const tag = `${Date.now().toString(36)}${counter}`;
  const createdAt = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, counter % 1000));
  return {
    id: uuidv7(),
    email: `user.${tag}@example.com`,
    username: `user_${tag}`,
    firstName: 'Ada',
    lastName: 'Lovelace',
    displayName: null,
    createdAt,
    updatedAt: createdAt,
    ...overrides,
  };
}

function profile(user: UserRecord) {
  return {
    id: user.id,
    email: user.email,
    username: user.username,
    firstName: user.firstName,
    lastName: user.lastName,
    displayName: user.displayName,
  };
}

export const createdEvent = (user: UserRecord) =>
  createEvent('aiva.users.user.created.v1', SOURCE, {
    ...profile(user),
    createdAt: user.createdAt.toISOString(),
  });

export const updatedEvent = (changedFields: string[]) => (user: UserRecord) =>
  createEvent('aiva.users.user.updated.v1', SOURCE, {
    ...profile(user),
    updatedAt: user.updatedAt.toISOString(),
    changedFields,
  });

export const deletedEvent = (user: UserRecord) =>
  createEvent('aiva.users.user.deleted.v1', SOURCE, { id: user.id, deletedAt: new Date().toISOString() });

async function insertUser(store: UserStore, overrides: Partial<UserRecord> = {}): Promise<UserRecord> {
  const user = makeUser(overrides);
  await store.insert(user, createdEvent(user));
  return user;
}

async function expectConflict(promise: Promise<unknown>, field: string): Promise<void> {
  const error = await promise.then(
    () => {
      throw new Error(`expected a CONFLICT on ${field}, but the write succeeded`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AivaError);
  expect(error).toMatchObject({ code: 'CONFLICT', extensions: { code: 'CONFLICT', field } });
}

/**
 * The behaviour every UserStore adapter must have. `open` returns a fresh, empty store; the contract closes it
 * after each test.
 */
export function userStoreContract(name: string, open: () => Promise<UserStore>): void {
  describe(`UserStore contract: ${name}`, () => {
    let store: UserStore;

    beforeEach(async () => {
      store = await open();
    });

    afterEach(async () => {
      await store.close();
    });

    it('starts empty and answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
      expect(await store.count()).toBe(0);
      expect(await store.pendingEvents(100)).toEqual([]);
    });

    it('round-trips an inserted user', async () => {
      const user = makeUser({ displayName: 'Countess', createdAt: new Date('2024-05-06T07:08:09.123Z') });
      user.updatedAt = new Date('2024-05-06T07:08:10.456Z');
      const returned = await store.insert(user, createdEvent(user));
      expect(returned).toEqual(user);

      const found = await store.findById(user.id);
      expect(found).toEqual(user);
      expect(found?.createdAt).toBeInstanceOf(Date);
      expect(found?.createdAt.getTime()).toBe(user.createdAt.getTime());
      expect(found?.updatedAt.getTime()).toBe(user.updatedAt.getTime());
      expect(await store.findById(uuidv7())).toBeNull();
    });

    it('rejects an email differing only in case, writing nothing', async () => {
      const first = await insertUser(store, { email: 'Grace.Hopper@Example.com' });
      const before = await store.pendingEvents(100);
      const dup = makeUser({ email: 'grace.hopper@example.COM' });

      await expectConflict(store.insert(dup, createdEvent(dup)), 'email');

      expect(await store.count()).toBe(1);
      expect(await store.findById(dup.id)).toBeNull();
      expect(await store.findById(first.id)).toEqual(first);
      expect(await store.pendingEvents(100)).toEqual(before);
    });

    it('rejects a username differing only in case, writing nothing', async () => {
      await insertUser(store, { username: 'GraceHopper' });
      const before = await store.pendingEvents(100);
      const dup = makeUser({ username: 'gracehopper' });

      await expectConflict(store.insert(dup, createdEvent(dup)), 'username');

      expect(await store.count()).toBe(1);
      expect(await store.findById(dup.id)).toBeNull();
      expect(await store.pendingEvents(100)).toEqual(before);
    });

    it('finds many ids at once, leaving out unknown ones', async () => {
      const users = [await insertUser(store), await insertUser(store), await insertUser(store)];
      const [a, , c] = users as [UserRecord, UserRecord, UserRecord];

      const found = await store.findByIds([c.id, uuidv7(), a.id]);
      expect(found.map((u) => u.id).sort()).toEqual([a.id, c.id].sort());
      expect(found.find((u) => u.id === a.id)).toEqual(a);
      expect(await store.findByIds([])).toEqual([]);
      expect(await store.findByIds([uuidv7()])).toEqual([]);
    });

    it('pages through users in id order', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 25; i++) ids.push((await insertUser(store)).id);
      expect(await store.count()).toBe(25);

      const pages: { ids: string[]; hasNextPage: boolean }[] = [];
      let afterId: string | undefined;
      for (let guard = 0; guard < 10; guard++) {
        const page = await store.list(afterId === undefined ? { first: 10 } : { first: 10, afterId });
        pages.push({ ids: page.users.map((u) => u.id), hasNextPage: page.hasNextPage });
        if (!page.hasNextPage) break;
        afterId = page.users.at(-1)?.id;
      }

      expect(pages.map((p) => p.ids.length)).toEqual([10, 10, 5]);
      expect(pages.map((p) => p.hasNextPage)).toEqual([true, true, false]);
      const all = pages.flatMap((p) => p.ids);
      expect(all).toEqual([...ids].sort());
      expect(new Set(all).size).toBe(25);

      // afterId excludes that id; an exact page boundary has no next page.
      const tail = await store.list({ first: 5, afterId: all[19] });
      expect(tail.users.map((u) => u.id)).toEqual(all.slice(20));
      expect(tail.hasNextPage).toBe(false);
      expect((await store.list({ first: 25 })).hasNextPage).toBe(false);
      expect((await store.list({ first: 24 })).hasNextPage).toBe(true);
    });

    it('counts users', async () => {
      expect(await store.count()).toBe(0);
      await insertUser(store);
      await insertUser(store);
      expect(await store.count()).toBe(2);
    });

    it('updates only the patched fields and updatedAt', async () => {
      const user = await insertUser(store, { displayName: null });
      const other = await insertUser(store);
      const updatedAt = new Date(user.createdAt.getTime() + 60_000);
      let seen: UserRecord | undefined;
      const patch: UserPatch = { displayName: 'Ada L.', lastName: 'King' };

      const updated = await store.update(user.id, patch, updatedAt, (u) => {
        seen = u;
        return updatedEvent(['displayName', 'lastName'])(u);
      });

      const expected: UserRecord = { ...user, displayName: 'Ada L.', lastName: 'King', updatedAt };
      expect(updated).toEqual(expected);
      expect(seen).toEqual(expected);
      expect(await store.findById(user.id)).toEqual(expected);
      expect(await store.findById(other.id)).toEqual(other);

      // Clearing a nullable field with null, and changing the case of one's own email, are fine.
      const again = await store.update(
        user.id,
        { displayName: null, email: user.email.toUpperCase() },
        updatedAt,
        updatedEvent(['displayName', 'email']),
      );
      expect(again).toEqual({ ...expected, displayName: null, email: user.email.toUpperCase() });
    });

    it('returns null and writes nothing when updating an unknown id', async () => {
      await insertUser(store);
      const before = await store.pendingEvents(100);
      let called = false;
      const result = await store.update(uuidv7(), { firstName: 'X' }, new Date(), (u) => {
        called = true;
        return updatedEvent(['firstName'])(u);
      });
      expect(result).toBeNull();
      expect(called).toBe(false);
      expect(await store.pendingEvents(100)).toEqual(before);
    });

    it('rejects an update into an existing email or username, leaving the user unchanged', async () => {
      const taken = await insertUser(store, { email: 'taken@example.com', username: 'Taken' });
      const user = await insertUser(store);
      const before = await store.pendingEvents(100);

      await expectConflict(
        store.update(
          user.id,
          { email: 'TAKEN@example.com', firstName: 'Changed' },
          new Date(),
          updatedEvent(['email']),
        ),
        'email',
      );
      await expectConflict(
        store.update(
          user.id,
          { username: 'taken', firstName: 'Changed' },
          new Date(),
          updatedEvent(['username']),
        ),
        'username',
      );

      expect(await store.findById(user.id)).toEqual(user);
      expect(await store.findById(taken.id)).toEqual(taken);
      expect(await store.pendingEvents(100)).toEqual(before);
    });

    it('removes a user, and reports unknown ids', async () => {
      const user = await insertUser(store);
      const keep = await insertUser(store);
      let seen: UserRecord | undefined;

      expect(
        await store.remove(user.id, (u) => {
          seen = u;
          return deletedEvent(u);
        }),
      ).toBe(true);
      expect(seen).toEqual(user);
      expect(await store.findById(user.id)).toBeNull();
      expect(await store.findById(keep.id)).toEqual(keep);
      expect(await store.count()).toBe(1);

      const before = await store.pendingEvents(100);
      expect(await store.remove(user.id, deletedEvent)).toBe(false);
      expect(await store.remove(uuidv7(), deletedEvent)).toBe(false);
      expect(await store.pendingEvents(100)).toEqual(before);

      // The email and username of a removed user are free again.
      const reuse = makeUser({ email: user.email, username: user.username });
      await store.insert(reuse, createdEvent(reuse));
      expect(await store.findById(reuse.id)).toEqual(reuse);
    });

    it('writes one outbox event per successful write, oldest first, until published', async () => {
      const user = makeUser();
      const created = createdEvent(user);
      await store.insert(user, created);

      let updated: AivaEvent | undefined;
      await store.update(user.id, { firstName: 'Augusta' }, new Date(), (u) => {
        updated = updatedEvent(['firstName'])(u);
        return updated;
      });
      let deleted: AivaEvent | undefined;
      await store.remove(user.id, (u) => {
        deleted = deletedEvent(u);
        return deleted;
      });

      const pending = await store.pendingEvents(100);
      expect(pending.map((e) => e.type)).toEqual([
        'aiva.users.user.created.v1',
        'aiva.users.user.updated.v1',
        'aiva.users.user.deleted.v1',
      ]);
      expect(pending).toEqual([created, updated, deleted]);
      expect(pending[1]?.data).toMatchObject({
        id: user.id,
        firstName: 'Augusta',
        changedFields: ['firstName'],
      });

      // The limit takes the oldest ones.
      expect((await store.pendingEvents(2)).map((e) => e.id)).toEqual([created.id, updated?.id]);

      await store.markPublished([created.id, updated!.id]);
      expect((await store.pendingEvents(100)).map((e) => e.id)).toEqual([deleted?.id]);

      // Marking again, or unknown ids, is harmless.
      await store.markPublished([created.id, uuidv7()]);
      await store.markPublished([]);
      expect((await store.pendingEvents(100)).map((e) => e.id)).toEqual([deleted?.id]);

      await store.markPublished([deleted!.id]);
      expect(await store.pendingEvents(100)).toEqual([]);
    });

    it('keeps the order of many events across inserts', async () => {
      const events: string[] = [];
      for (let i = 0; i < 12; i++) {
        const user = makeUser();
        const event = createdEvent(user);
        events.push(event.id);
        await store.insert(user, event);
      }
      expect((await store.pendingEvents(100)).map((e) => e.id)).toEqual(events);
      expect((await store.pendingEvents(5)).map((e) => e.id)).toEqual(events.slice(0, 5));
    });

    it('syncs an email changed in auth once per event, with its updated event', async () => {
      const user = await insertUser(store);
      const taken = await insertUser(store);
      const before = await store.pendingEvents(100);
      const at = new Date(user.createdAt.getTime() + 60_000);
      const change = {
        consumer: 'users.email-sync',
        eventId: uuidv7(),
        userId: user.id,
        email: 'new@example.com',
        at,
      };
      let event: AivaEvent | undefined;
      const makeEvent = (u: UserRecord) => {
        event = updatedEvent(['email'])(u);
        return event;
      };
      expect(await store.syncEmail(change, makeEvent)).toBe('updated');
      expect(await store.findById(user.id)).toEqual({ ...user, email: 'new@example.com', updatedAt: at });
      expect(await store.pendingEvents(100)).toEqual([...before, event]);
      expect(event?.data).toMatchObject({ id: user.id, email: 'new@example.com', changedFields: ['email'] });

      // The same event again (a redelivery): nothing happens, even if the profile changed meanwhile.
      await store.update(user.id, { firstName: 'Other' }, at, updatedEvent(['firstName']));
      const afterUpdate = await store.pendingEvents(100);
      expect(await store.syncEmail({ ...change, email: 'again@example.com' }, makeEvent)).toBe('duplicate');
      expect((await store.findById(user.id))?.email).toBe('new@example.com');
      expect(await store.pendingEvents(100)).toEqual(afterUpdate);
      // Another consumer name is another consumer.
      expect(await store.syncEmail({ ...change, consumer: 'other.consumer' }, makeEvent)).toBe('unchanged');

      expect(await store.syncEmail({ ...change, eventId: uuidv7(), userId: uuidv7() }, makeEvent)).toBe(
        'missing',
      );
      expect(await store.pendingEvents(100)).toEqual(afterUpdate);

      // A taken email (any case): CONFLICT, nothing written, not even the event id (a retry may succeed later).
      const clash = { ...change, eventId: uuidv7(), email: taken.email.toUpperCase() };
      await expectConflict(store.syncEmail(clash, makeEvent), 'email');
      expect((await store.findById(user.id))?.email).toBe('new@example.com');
      expect(await store.pendingEvents(100)).toEqual(afterUpdate);
      await store.remove(taken.id, deletedEvent);
      expect(await store.syncEmail(clash, makeEvent)).toBe('updated');
      expect((await store.findById(user.id))?.email).toBe(taken.email.toUpperCase());
    });

    it('keeps a poison outbox row in quarantine until replayed or discarded, under the relay lease', async () => {
      const user = makeUser();
      const event = createdEvent(user);
      await store.insert(user, event);
      const outcome = await store.recordFailure(event.id, { error: 'bad', permanent: true, maxAttempts: 5 });
      expect(outcome).toEqual({ attempts: 1, quarantined: true });
      expect(await store.pendingEvents(100)).toEqual([]);
      expect((await store.quarantinedEvents()).map((q) => q.event)).toEqual([event]);
      expect(await store.discardQuarantined([event.id])).toBe(1);
      expect(await store.outboxStats()).toEqual({ pending: 0, quarantined: 0 });
      expect(await store.acquireRelayLease('a', 60_000)).toBe(true);
      expect(await store.acquireRelayLease('b', 60_000)).toBe(false);
      await store.releaseRelayLease('a');
      expect(await store.acquireRelayLease('b', 60_000)).toBe(true);
    });

    it('closes idempotently', async () => {
      await store.close();
      await store.close();
      store = await open(); // afterEach closes this one
      expect(await store.count()).toBe(0);
    });
  });
}
