import { createHash, randomBytes } from 'node:crypto';
import {
  AivaError,
  type AivaEvent,
  createEvent,
  generateSealingKey,
  seal,
  sealingKeys,
  uuidv7,
} from '@aiva/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  AccountRecord,
  AccountStore,
  OneTimeTokenPurpose,
  OneTimeTokenRecord,
} from '../src/store/account.store.js';

const SOURCE = 'auth';
let counter = 0;
/** Token events carry the token sealed (the catalog refuses plaintext). */
const SEALING = sealingKeys([generateSealingKey()]);

/** A valid account with a unique lower-cased email, timestamps at millisecond precision. */
export function makeAccount(overrides: Partial<AccountRecord> = {}): AccountRecord {
  counter++;
  const tag = `${Date.now().toString(36)}${counter}`;
  const createdAt = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, counter % 1000));
  return {
    id: uuidv7(),
    email: `account.${tag}@example.com`,
    passwordHash: `$argon2id$v=19$m=19456,t=2,p=1$${randomBytes(16).toString('base64')}`,
    emailVerified: false,
    roles: ['user'],
    createdAt,
    updatedAt: createdAt,
    passwordChangedAt: createdAt,
    ...overrides,
  };
}

export const registeredEvent = (account: AccountRecord) =>
  createEvent('aiva.auth.user.registered.v1', SOURCE, {
    id: account.id,
    email: account.email,
    registeredAt: account.createdAt.toISOString(),
  });

/** A token record (expiring an hour from now) and the secret it hashes. */
export function makeToken(
  accountId: string,
  purpose: OneTimeTokenPurpose = 'password_reset',
  overrides: Partial<OneTimeTokenRecord> = {},
): { token: OneTimeTokenRecord; secret: string } {
  const secret = randomBytes(32).toString('base64url');
  const createdAt = new Date();
  return {
    secret,
    token: {
      hash: createHash('sha256').update(secret).digest('hex'),
      purpose,
      accountId,
      createdAt,
      expiresAt: new Date(createdAt.getTime() + 60 * 60 * 1000),
      usedAt: null,
      ...overrides,
    },
  };
}

export const tokenEvent = (account: AccountRecord, token: OneTimeTokenRecord, secret: string): AivaEvent =>
  createEvent(
    token.purpose === 'password_reset'
      ? 'aiva.auth.password_reset.requested.v1'
      : 'aiva.auth.email_verification.requested.v1',
    SOURCE,
    {
      userId: account.id,
      email: account.email,
      token: seal(secret, SEALING),
      expiresAt: token.expiresAt.toISOString(),
    },
  );

export const emailChangedEvent = (account: AccountRecord, email: string, at: Date) =>
  createEvent('aiva.auth.user.email_changed.v1', SOURCE, {
    id: account.id,
    email,
    previousEmail: account.email,
    changedAt: at.toISOString(),
  });

async function expectError(promise: Promise<unknown>, code: string, field: string): Promise<void> {
  const error = await promise.then(
    () => {
      throw new Error(`expected ${code} on ${field}, but the write succeeded`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AivaError);
  expect(error).toMatchObject({ code, extensions: { code, field } });
}

/**
 * The behaviour every AccountStore adapter must have. `open` returns a fresh, empty store; the contract closes
 * it after each test.
 */
export function accountStoreContract(name: string, open: () => Promise<AccountStore>): void {
  describe(`AccountStore contract: ${name}`, () => {
    let store: AccountStore;

    beforeEach(async () => {
      store = await open();
    });

    afterEach(async () => {
      await store.close();
    });

    async function insertAccount(overrides: Partial<AccountRecord> = {}): Promise<AccountRecord> {
      const account = makeAccount(overrides);
      await store.insert(account, [registeredEvent(account)]);
      return account;
    }

    async function insertToken(
      account: AccountRecord,
      purpose: OneTimeTokenPurpose = 'password_reset',
      overrides: Partial<OneTimeTokenRecord> = {},
    ): Promise<OneTimeTokenRecord> {
      const { token, secret } = makeToken(account.id, purpose, overrides);
      await store.insertToken(token, [tokenEvent(account, token, secret)]);
      return token;
    }

    it('starts empty and answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
      expect(await store.pendingEvents(100)).toEqual([]);
      expect(await store.findByEmail('nobody@example.com')).toBeNull();
    });

    it('round-trips an inserted account', async () => {
      const account = makeAccount({
        emailVerified: true,
        roles: ['user', 'admin'],
        createdAt: new Date('2024-05-06T07:08:09.123Z'),
        updatedAt: new Date('2024-05-06T07:08:10.456Z'),
        passwordChangedAt: new Date('2024-05-06T07:08:11.789Z'),
      });
      await store.insert(account, [registeredEvent(account)]);

      const found = await store.findById(account.id);
      expect(found).toEqual(account);
      expect(found?.createdAt).toBeInstanceOf(Date);
      expect(found?.passwordChangedAt.getTime()).toBe(account.passwordChangedAt.getTime());
      expect(await store.findById(uuidv7())).toBeNull();

      const empty = await insertAccount({ roles: [] });
      expect((await store.findById(empty.id))?.roles).toEqual([]);
    });

    it('finds accounts by email case-insensitively, storing the email lower-cased', async () => {
      const account = await insertAccount({ email: 'grace.hopper@example.com' });
      expect(await store.findByEmail('grace.hopper@example.com')).toEqual(account);
      expect(await store.findByEmail('Grace.Hopper@EXAMPLE.com')).toEqual(account);
      expect(await store.findByEmail('grace@example.com')).toBeNull();

      const mixed = makeAccount({ email: 'Ada.Lovelace@Example.COM' });
      await store.insert(mixed, []);
      expect(await store.findById(mixed.id)).toEqual({ ...mixed, email: 'ada.lovelace@example.com' });
      expect((await store.findByEmail('ADA.LOVELACE@example.com'))?.id).toBe(mixed.id);
    });

    it('rejects a duplicate email (any case) with CONFLICT on email, writing nothing', async () => {
      const first = await insertAccount({ email: 'taken@example.com' });
      const before = await store.pendingEvents(100);
      const dup = makeAccount({ email: 'TAKEN@example.com' });

      await expectError(store.insert(dup, [registeredEvent(dup)]), 'CONFLICT', 'email');

      expect(await store.findById(dup.id)).toBeNull();
      expect(await store.findById(first.id)).toEqual(first);
      expect(await store.findByEmail('taken@example.com')).toEqual(first);
      expect(await store.pendingEvents(100)).toEqual(before);
    });

    it('rejects a duplicate id with CONFLICT on id', async () => {
      const first = await insertAccount();
      const before = await store.pendingEvents(100);
      const dup = makeAccount({ id: first.id });
      await expectError(store.insert(dup, [registeredEvent(dup)]), 'CONFLICT', 'id');
      expect(await store.findById(first.id)).toEqual(first);
      expect(await store.pendingEvents(100)).toEqual(before);
    });

    it('finds many ids at once, leaving out unknown ones', async () => {
      const a = await insertAccount();
      await insertAccount();
      const c = await insertAccount();

      const found = await store.findByIds([c.id, uuidv7(), a.id, a.id]);
      expect(found.map((x) => x.id).sort()).toEqual([a.id, c.id].sort());
      expect(found.find((x) => x.id === a.id)).toEqual(a);
      expect(await store.findByIds([])).toEqual([]);
      expect(await store.findByIds([uuidv7()])).toEqual([]);
    });

    it('updates the password, the verified flag and the roles', async () => {
      const account = await insertAccount();
      const other = await insertAccount();
      const t1 = new Date(account.createdAt.getTime() + 60_000);
      const t2 = new Date(account.createdAt.getTime() + 120_000);
      const t3 = new Date(account.createdAt.getTime() + 180_000);

      expect(await store.updatePassword(account.id, 'new-hash', t1)).toBe(true);
      expect(await store.findById(account.id)).toEqual({
        ...account,
        passwordHash: 'new-hash',
        passwordChangedAt: t1,
        updatedAt: t1,
      });

      expect(await store.setEmailVerified(account.id, t2)).toBe(true);
      expect(await store.findById(account.id)).toEqual({
        ...account,
        passwordHash: 'new-hash',
        passwordChangedAt: t1,
        emailVerified: true,
        updatedAt: t2,
      });

      expect(await store.setRoles(account.id, ['user', 'admin'], t3)).toBe(true);
      expect(await store.findById(account.id)).toEqual({
        ...account,
        passwordHash: 'new-hash',
        passwordChangedAt: t1,
        emailVerified: true,
        roles: ['user', 'admin'],
        updatedAt: t3,
      });
      expect(await store.setRoles(account.id, [], t3)).toBe(true);
      expect((await store.findById(account.id))?.roles).toEqual([]);

      expect(await store.findById(other.id)).toEqual(other);
    });

    it('reports unknown ids on updates and writes no events for them', async () => {
      await insertAccount();
      const before = await store.pendingEvents(100);
      const id = uuidv7();
      expect(await store.updatePassword(id, 'x', new Date())).toBe(false);
      expect(await store.setEmailVerified(id, new Date())).toBe(false);
      expect(await store.setRoles(id, ['admin'], new Date())).toBe(false);
      expect(await store.remove(id)).toBe(false);
      expect(await store.findById(id)).toBeNull();
      expect(await store.pendingEvents(100)).toEqual(before);
    });

    it('removes an account for an event once per event id (idempotent consumer)', async () => {
      const account = await insertAccount();
      const token = await insertToken(account);
      const eventId = uuidv7();
      expect(await store.hasProcessed('auth.account-removal', eventId)).toBe(false);
      expect(await store.removeForEvent('auth.account-removal', eventId, account.id)).toBe('removed');
      expect(await store.findById(account.id)).toBeNull();
      expect(await store.consumeToken(token.hash, token.purpose, new Date())).toBeNull();
      expect(await store.hasProcessed('auth.account-removal', eventId)).toBe(true);
      // A redelivery, even after an account with that id came back (a restore): nothing happens.
      await store.insert({ ...account }, []);
      expect(await store.removeForEvent('auth.account-removal', eventId, account.id)).toBe('duplicate');
      expect(await store.findById(account.id)).not.toBeNull();
      expect(await store.removeForEvent('auth.account-removal', uuidv7(), uuidv7())).toBe('missing');
    });

    it('keeps a poison outbox row in quarantine until replayed or discarded', async () => {
      const account = makeAccount();
      const event = registeredEvent(account);
      await store.insert(account, [event]);
      const outcome = await store.recordFailure(event.id, { error: 'bad', permanent: true, maxAttempts: 5 });
      expect(outcome).toEqual({ attempts: 1, quarantined: true });
      expect(await store.pendingEvents(100)).toEqual([]);
      expect((await store.quarantinedEvents()).map((q) => q.event)).toEqual([event]);
      expect(await store.outboxStats()).toEqual({ pending: 0, quarantined: 1 });
      expect(await store.replayQuarantined()).toBe(1);
      expect(await store.pendingEvents(100)).toEqual([event]);
    });

    it('removes an account with its tokens, freeing its email', async () => {
      const account = await insertAccount();
      const keep = await insertAccount();
      const token = await insertToken(account);
      const otherToken = await insertToken(keep);

      expect(await store.remove(account.id)).toBe(true);
      expect(await store.findById(account.id)).toBeNull();
      expect(await store.findByEmail(account.email)).toBeNull();
      expect(await store.remove(account.id)).toBe(false);
      // The token went with the account: it can no longer be consumed.
      expect(await store.consumeToken(token.hash, token.purpose, new Date())).toBeNull();
      expect(await store.findById(keep.id)).toEqual(keep);
      expect(await store.consumeToken(otherToken.hash, otherToken.purpose, new Date())).toMatchObject({
        hash: otherToken.hash,
      });

      const reuse = makeAccount({ email: account.email });
      await store.insert(reuse, []);
      expect(await store.findByEmail(account.email)).toEqual(reuse);
    });

    it('stores events in the outbox with their write, oldest first, until published', async () => {
      const account = makeAccount();
      const registered = registeredEvent(account);
      await store.insert(account, [registered]);
      const { token, secret } = makeToken(account.id, 'email_verification');
      const requested = tokenEvent(account, token, secret);
      await store.insertToken(token, [requested]);
      const second = makeAccount();
      const many = [registeredEvent(second), registeredEvent(second)];
      await store.insert(second, many);

      const pending = await store.pendingEvents(100);
      expect(pending).toEqual([registered, requested, ...many]);
      expect(pending.map((e) => e.type)).toEqual([
        'aiva.auth.user.registered.v1',
        'aiva.auth.email_verification.requested.v1',
        'aiva.auth.user.registered.v1',
        'aiva.auth.user.registered.v1',
      ]);
      expect((await store.pendingEvents(2)).map((e) => e.id)).toEqual([registered.id, requested.id]);

      await store.markPublished([registered.id, requested.id]);
      expect((await store.pendingEvents(100)).map((e) => e.id)).toEqual(many.map((e) => e.id));
      await store.markPublished([registered.id, uuidv7()]);
      await store.markPublished([]);
      await store.markPublished(many.map((e) => e.id));
      expect(await store.pendingEvents(100)).toEqual([]);
      expect(await store.pendingEvents(0)).toEqual([]);
    });

    it('rejects a token for an unknown account, writing nothing', async () => {
      const account = makeAccount();
      const { token, secret } = makeToken(account.id);
      await expectError(
        store.insertToken(token, [tokenEvent(account, token, secret)]),
        'NOT_FOUND',
        'accountId',
      );
      expect(await store.pendingEvents(100)).toEqual([]);
      expect(await store.consumeToken(token.hash, token.purpose, new Date())).toBeNull();
    });

    it('consumes a token once, returning it as it was', async () => {
      const account = await insertAccount();
      const token = await insertToken(account, 'password_reset');
      const now = new Date();

      const consumed = await store.consumeToken(token.hash, 'password_reset', now);
      expect(consumed).toEqual(token);
      expect(consumed?.usedAt).toBeNull();
      expect(consumed?.expiresAt).toBeInstanceOf(Date);

      expect(await store.consumeToken(token.hash, 'password_reset', now)).toBeNull();
      expect(await store.consumeToken(token.hash, 'password_reset', new Date(now.getTime() + 1))).toBeNull();
      expect(await store.consumeToken('0'.repeat(64), 'password_reset', now)).toBeNull();
    });

    it('does not consume an expired token, or one of another purpose', async () => {
      const account = await insertAccount();
      const token = await insertToken(account, 'email_verification');

      expect(await store.consumeToken(token.hash, 'password_reset', new Date())).toBeNull();
      // Expired: expiresAt must be strictly later than now.
      expect(await store.consumeToken(token.hash, 'email_verification', token.expiresAt)).toBeNull();
      expect(
        await store.consumeToken(
          token.hash,
          'email_verification',
          new Date(token.expiresAt.getTime() + 1000),
        ),
      ).toBeNull();
      // None of that used it up.
      expect(
        await store.consumeToken(token.hash, 'email_verification', new Date(token.expiresAt.getTime() - 1)),
      ).toEqual(token);

      const stale = await insertToken(account, 'password_reset', {
        createdAt: new Date(Date.now() - 2 * 60 * 60 * 1000),
        expiresAt: new Date(Date.now() - 60 * 60 * 1000),
      });
      expect(await store.consumeToken(stale.hash, 'password_reset', new Date())).toBeNull();
    });

    it('lets exactly one of concurrent consumers win', async () => {
      const account = await insertAccount();
      const token = await insertToken(account);
      const now = new Date();
      const results = await Promise.all(
        Array.from({ length: 5 }, () => store.consumeToken(token.hash, token.purpose, now)),
      );
      expect(results.filter((r) => r !== null)).toEqual([token]);
    });

    it('keeps the new address of an email-change token, lower-cased', async () => {
      const account = await insertAccount();
      const { token } = makeToken(account.id, 'email_change', { newEmail: 'New.Address@Example.com' });
      await store.insertToken(token, []);
      expect(await store.consumeToken(token.hash, 'password_reset', new Date())).toBeNull();
      expect(await store.consumeToken(token.hash, 'email_change', new Date())).toEqual({
        ...token,
        newEmail: 'new.address@example.com',
      });
      // Other purposes carry no address.
      const reset = await insertToken(account, 'password_reset');
      expect(await store.consumeToken(reset.hash, 'password_reset', new Date())).not.toHaveProperty(
        'newEmail',
      );
    });

    it('invalidates the unused tokens of an account for the given purposes only', async () => {
      const account = await insertAccount();
      const other = await insertAccount();
      const resets = [await insertToken(account), await insertToken(account)];
      const verification = await insertToken(account, 'email_verification');
      const othersReset = await insertToken(other);
      const used = await insertToken(account);
      expect(await store.consumeToken(used.hash, 'password_reset', new Date())).not.toBeNull();

      expect(await store.invalidateTokens(account.id, ['password_reset'], new Date())).toBe(2);
      for (const token of resets) {
        expect(await store.consumeToken(token.hash, 'password_reset', new Date())).toBeNull();
      }
      expect(await store.consumeToken(verification.hash, 'email_verification', new Date())).not.toBeNull();
      expect(await store.consumeToken(othersReset.hash, 'password_reset', new Date())).not.toBeNull();
      expect(await store.invalidateTokens(account.id, [], new Date())).toBe(0);
      expect(await store.invalidateTokens(uuidv7(), ['password_reset'], new Date())).toBe(0);
    });

    it('changes the email (verified, lower-cased) with its event, refusing a taken one', async () => {
      const account = await insertAccount();
      const other = await insertAccount({ email: 'taken.one@example.com' });
      const before = await store.pendingEvents(100);
      const at = new Date(account.createdAt.getTime() + 60_000);
      const changed = emailChangedEvent(account, 'fresh.address@example.com', at);
      expect(await store.changeEmail(account.id, 'Fresh.Address@example.com', at, [changed])).toBe(true);
      expect(await store.findById(account.id)).toEqual({
        ...account,
        email: 'fresh.address@example.com',
        emailVerified: true,
        updatedAt: at,
      });
      expect(await store.findByEmail('FRESH.address@example.com')).toMatchObject({ id: account.id });
      expect(await store.findByEmail(account.email)).toBeNull();
      expect(await store.pendingEvents(100)).toEqual([...before, changed]);

      const clash = emailChangedEvent(account, 'taken.one@example.com', at);
      await expectError(
        store.changeEmail(account.id, 'TAKEN.one@example.com', at, [clash]),
        'CONFLICT',
        'email',
      );
      expect((await store.findById(account.id))?.email).toBe('fresh.address@example.com');
      expect(await store.findById(other.id)).toEqual(other);
      expect(await store.pendingEvents(100)).toEqual([...before, changed]);
      expect(await store.changeEmail(uuidv7(), 'nobody.here@example.com', at, [])).toBe(false);
    });

    it('keeps pending profile removals until done, handing each due one to one claimer', async () => {
      const t0 = new Date('2024-03-04T05:06:07.000Z');
      const later = new Date(t0.getTime() + 60_000);
      const a = uuidv7();
      const b = uuidv7();
      await store.addProfileRemoval(a, t0);
      await store.addProfileRemoval(b, t0, later);
      await store.addProfileRemoval(a, later, later); // idempotent: the first entry stays as it is
      expect(await store.pendingProfileRemovals()).toEqual([
        { userId: a, createdAt: t0, attempts: 0, nextAttemptAt: t0, lastError: null },
        { userId: b, createdAt: t0, attempts: 0, nextAttemptAt: later, lastError: null },
      ]);

      const lease = new Date(t0.getTime() + 30_000);
      const claimed = await store.claimProfileRemovals(t0, lease, 10);
      expect(claimed.map((r) => r.userId)).toEqual([a]);
      expect(claimed[0]?.nextAttemptAt).toEqual(lease);
      // Leased: nobody else gets it until the lease ends.
      expect(await store.claimProfileRemovals(t0, lease, 10)).toEqual([]);

      const retryAt = new Date(t0.getTime() + 120_000);
      await store.failProfileRemoval(a, retryAt, 'The users service is unavailable');
      await store.failProfileRemoval(uuidv7(), retryAt, 'unknown entry: nothing happens');
      expect((await store.pendingProfileRemovals())[0]).toEqual({
        userId: a,
        createdAt: t0,
        attempts: 1,
        nextAttemptAt: retryAt,
        lastError: 'The users service is unavailable',
      });
      const both = await store.claimProfileRemovals(retryAt, new Date(retryAt.getTime() + 1), 10);
      expect(both.map((r) => r.userId).sort()).toEqual([a, b].sort());
      expect(await store.claimProfileRemovals(retryAt, retryAt, 0)).toEqual([]);

      await store.completeProfileRemoval(a);
      await store.completeProfileRemoval(a);
      expect((await store.pendingProfileRemovals()).map((r) => r.userId)).toEqual([b]);
    });

    it('closes idempotently', async () => {
      await store.close();
      await store.close();
      store = await open(); // afterEach closes this one
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
