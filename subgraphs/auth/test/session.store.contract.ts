import { createHash, randomBytes } from 'node:crypto';
import { AivaError, uuidv7 } from '@aiva/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_PREVIOUS_HASHES, type SessionRecord, type SessionStore } from '../src/store/session.store.js';

const HOUR = 60 * 60 * 1000;

/** A fresh refresh-secret hash. */
export const newHash = (): string => createHash('sha256').update(randomBytes(32)).digest('hex');

/**
 * A live session: created `ageMs` ago (default now), expiring 30 days later. Dates are relative to the real
 * clock, because adapters (Redis) expire sessions by it.
 */
export function makeSession(overrides: Partial<SessionRecord> = {}, ageMs = 0): SessionRecord {
  const createdAt = new Date(Date.now() - ageMs);
  return {
    id: uuidv7(),
    userId: uuidv7(),
    tokenHash: newHash(),
    previousHashes: [],
    createdAt,
    lastUsedAt: createdAt,
    expiresAt: new Date(createdAt.getTime() + 30 * 24 * HOUR),
    revokedAt: null,
    revokedReason: null,
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0',
    ip: '203.0.113.7',
    ...overrides,
  };
}

/**
 * The behaviour every SessionStore adapter must have. `open` returns a fresh, empty store; the contract closes
 * it after each test.
 */
export function sessionStoreContract(name: string, open: () => Promise<SessionStore>): void {
  describe(`SessionStore contract: ${name}`, () => {
    let store: SessionStore;

    beforeEach(async () => {
      store = await open();
    });

    afterEach(async () => {
      await store.close();
    });

    async function create(overrides: Partial<SessionRecord> = {}, ageMs = 0): Promise<SessionRecord> {
      const session = makeSession(overrides, ageMs);
      await store.create(session);
      return session;
    }

    it('answers ping and knows nothing of unknown ids', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
      expect(await store.get(uuidv7())).toBeNull();
      expect(await store.listActiveForUser(uuidv7(), new Date())).toEqual([]);
    });

    it('round-trips a session, dates included', async () => {
      const session = makeSession({
        previousHashes: [newHash(), newHash()],
        createdAt: new Date(Date.now() - 5000),
        lastUsedAt: new Date(Date.now() - 1000),
      });
      await store.create(session);
      const found = await store.get(session.id);
      expect(found).toEqual(session);
      expect(found?.expiresAt).toBeInstanceOf(Date);
      expect(found?.createdAt.getTime()).toBe(session.createdAt.getTime());

      const bare = await create({ userAgent: null, ip: null });
      expect(await store.get(bare.id)).toEqual(bare);
      const empty = await create({ userAgent: '', ip: '' });
      expect(await store.get(empty.id)).toEqual(empty);
    });

    it('rejects a duplicate id with CONFLICT', async () => {
      const session = await create();
      const error = await store.create(makeSession({ id: session.id })).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(AivaError);
      expect(error).toMatchObject({ code: 'CONFLICT', extensions: { field: 'id' } });
      expect(await store.get(session.id)).toEqual(session);
    });

    it('rotates with the current hash, remembering the old one', async () => {
      const session = await create({}, 1000);
      const next = newHash();
      const now = new Date();

      const rotated = await store.rotate(session.id, session.tokenHash, next, now);
      const expected: SessionRecord = {
        ...session,
        tokenHash: next,
        previousHashes: [session.tokenHash],
        lastUsedAt: now,
      };
      expect(rotated).toEqual(expected);
      expect(await store.get(session.id)).toEqual(expected);

      const third = newHash();
      const later = new Date(now.getTime() + 1000);
      expect(await store.rotate(session.id, next, third, later)).toEqual({
        ...expected,
        tokenHash: third,
        previousHashes: [session.tokenHash, next],
        lastUsedAt: later,
      });
    });

    it('refuses a stale or wrong hash, changing nothing', async () => {
      const session = await create();
      const next = newHash();
      await store.rotate(session.id, session.tokenHash, next, new Date());
      const before = await store.get(session.id);

      expect(await store.rotate(session.id, session.tokenHash, newHash(), new Date())).toBeNull();
      expect(await store.rotate(session.id, newHash(), newHash(), new Date())).toBeNull();
      expect(await store.rotate(uuidv7(), next, newHash(), new Date())).toBeNull();
      expect(await store.get(session.id)).toEqual(before);
    });

    it('refuses to rotate an expired session', async () => {
      const session = await create();
      const after = new Date(session.expiresAt.getTime() + 1);
      expect(await store.rotate(session.id, session.tokenHash, newHash(), after)).toBeNull();
      expect(await store.rotate(session.id, session.tokenHash, newHash(), session.expiresAt)).toBeNull();
      expect(await store.get(session.id)).toEqual(session);
    });

    it('lets exactly one of concurrent rotations with the same hash win', async () => {
      const session = await create();
      const nexts = Array.from({ length: 5 }, () => newHash());
      const now = new Date();
      const results = await Promise.all(
        nexts.map((next) => store.rotate(session.id, session.tokenHash, next, now)),
      );

      const winners = results.filter((r): r is SessionRecord => r !== null);
      expect(winners).toHaveLength(1);
      const winner = winners[0]!;
      expect(nexts).toContain(winner.tokenHash);
      expect(winner.previousHashes).toEqual([session.tokenHash]);
      expect(await store.get(session.id)).toEqual(winner);
    });

    it('revokes a session once; a revoked session cannot rotate', async () => {
      const session = await create();
      const now = new Date();
      expect(await store.revoke(session.id, 'logout', now)).toBe(true);
      const revoked = await store.get(session.id);
      expect(revoked).toEqual({ ...session, revokedAt: now, revokedReason: 'logout' });

      expect(await store.revoke(session.id, 'again', new Date())).toBe(false);
      expect(await store.revoke(uuidv7(), 'logout', new Date())).toBe(false);
      expect(await store.rotate(session.id, session.tokenHash, newHash(), new Date())).toBeNull();
      // Still there (for reuse detection), unchanged.
      expect(await store.get(session.id)).toEqual(revoked);
    });

    it('revokes all sessions of a user except the current one', async () => {
      const userId = uuidv7();
      const current = await create({ userId }, 3000);
      const a = await create({ userId }, 2000);
      const b = await create({ userId }, 1000);
      const already = await create({ userId });
      await store.revoke(already.id, 'logout', new Date());
      const stranger = await create();
      const now = new Date();

      expect(await store.revokeAllForUser(userId, 'password_changed', now, current.id)).toBe(2);
      expect(await store.get(a.id)).toMatchObject({ revokedAt: now, revokedReason: 'password_changed' });
      expect(await store.get(b.id)).toMatchObject({ revokedAt: now, revokedReason: 'password_changed' });
      expect((await store.get(already.id))?.revokedReason).toBe('logout');
      expect(await store.get(current.id)).toEqual(current);
      expect(await store.get(stranger.id)).toEqual(stranger);
      expect((await store.listActiveForUser(userId, new Date())).map((s) => s.id)).toEqual([current.id]);

      expect(await store.revokeAllForUser(userId, 'admin', new Date())).toBe(1);
      expect(await store.listActiveForUser(userId, new Date())).toEqual([]);
      expect(await store.revokeAllForUser(userId, 'admin', new Date())).toBe(0);
      expect(await store.revokeAllForUser(uuidv7(), 'admin', new Date())).toBe(0);
    });

    it('lists active sessions newest first, leaving out revoked and expired ones', async () => {
      const userId = uuidv7();
      const oldest = await create({ userId }, 3 * HOUR);
      const middle = await create({ userId }, 2 * HOUR);
      const newest = await create({ userId }, HOUR);
      const revoked = await create({ userId }, 30 * 60 * 1000);
      await store.revoke(revoked.id, 'logout', new Date());
      // Expires soon: active now, not an hour from now.
      const shortLived = await create(
        { userId, expiresAt: new Date(Date.now() + 30 * 60 * 1000) },
        60 * 1000,
      );
      // Already expired when stored.
      await create({ userId, expiresAt: new Date(Date.now() - 1000) }, 2 * HOUR);
      await create(); // another user's

      const now = new Date();
      expect((await store.listActiveForUser(userId, now)).map((s) => s.id)).toEqual([
        shortLived.id,
        newest.id,
        middle.id,
        oldest.id,
      ]);
      const active = await store.listActiveForUser(userId, now);
      expect(active[1]).toEqual(newest);

      const inAnHour = new Date(now.getTime() + HOUR);
      expect((await store.listActiveForUser(userId, inAnHour)).map((s) => s.id)).toEqual([
        newest.id,
        middle.id,
        oldest.id,
      ]);
    });

    it(`remembers at most ${MAX_PREVIOUS_HASHES} previous hashes, newest last`, async () => {
      const session = await create();
      const hashes = [session.tokenHash];
      let now = Date.now();
      for (let i = 0; i < MAX_PREVIOUS_HASHES + 5; i++) {
        const next = newHash();
        const rotated = await store.rotate(session.id, hashes.at(-1)!, next, new Date(++now));
        expect(rotated).not.toBeNull();
        hashes.push(next);
      }
      const final = await store.get(session.id);
      expect(final?.tokenHash).toBe(hashes.at(-1));
      expect(final?.previousHashes).toHaveLength(MAX_PREVIOUS_HASHES);
      expect(final?.previousHashes).toEqual(hashes.slice(-MAX_PREVIOUS_HASHES - 1, -1));
    });

    it('closes idempotently', async () => {
      await store.close();
      await store.close();
      store = await open(); // afterEach closes this one
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
