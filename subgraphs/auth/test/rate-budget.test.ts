import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AivaError, type Cache, createMemoryCache, createSqliteCache } from '@aiva/shared';
import { afterAll, describe, expect, it } from 'vitest';
import { RateBudget } from '../src/rate-budget.js';
import { RequestBudgets } from '../src/request-budgets.js';
import { SignInLimiter } from '../src/sign-in-limiter.js';

const dir = mkdtempSync(join(tmpdir(), 'aiva-rate-budget-'));
const caches: Cache[] = [];
afterAll(async () => {
  for (const cache of caches) await cache.close();
  rmSync(dir, { recursive: true, force: true });
});

async function refusal(promise: Promise<unknown>): Promise<AivaError> {
  const error = await promise.then(
    () => {
      throw new Error('expected RATE_LIMITED');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AivaError);
  expect((error as AivaError).code).toBe('RATE_LIMITED');
  return error as AivaError;
}

const settle = <T>(promises: Array<Promise<T>>) => Promise.allSettled(promises);

for (const [label, open] of [
  ['memory cache', async () => createMemoryCache()],
  // Two connections to one file: two processes of one machine.
  ['SQLite cache', async () => createSqliteCache({ file: join(dir, `cache-${Date.now()}.sqlite`) })],
] as const) {
  describe(`RateBudget (${label})`, () => {
    it('lets exactly `max` of many parallel reservations pass', async () => {
      const cache = await open();
      caches.push(cache);
      const budget = new RateBudget(cache, 60);
      const results = await settle(
        Array.from({ length: 40 }, () => budget.reserve([{ key: 'k', max: 7 }], 'too many')),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(7);
      expect(results.filter((r) => r.status === 'rejected')).toHaveLength(33);
    });

    it('gives a refunded unit back, once', async () => {
      const cache = await open();
      caches.push(cache);
      const budget = new RateBudget(cache, 60);
      const rule = [{ key: 'refund', max: 2 }];
      const a = await budget.reserve(rule, 'too many');
      await budget.reserve(rule, 'too many');
      await a.refund();
      await a.refund(); // harmless twice
      await budget.reserve(rule, 'too many');
      await refusal(budget.reserve(rule, 'too many'));
    });

    it('never lets a refused reservation free a place (the window stays exhausted)', async () => {
      const cache = await open();
      caches.push(cache);
      const budget = new RateBudget(cache, 60);
      const rule = [{ key: 'storm', max: 2 }];
      const a = await budget.reserve(rule, 'too many');
      await budget.reserve(rule, 'too many');
      for (let i = 0; i < 3; i++) await refusal(budget.reserve(rule, 'too many'));
      // A holder's refund after a storm does not reopen the window: refused units still count, so concurrent
      // reservations can never see more places than were really held.
      await a.refund();
      await refusal(budget.reserve(rule, 'too many'));
    });

    it('gives back the units of earlier rules when a later one refuses', async () => {
      const cache = await open();
      caches.push(cache);
      const budget = new RateBudget(cache, 60);
      const address = { key: 'address', max: 3 };
      await budget.reserve([{ key: 'victim', max: 1 }], 'x');
      // The victim's budget is gone: requests naming it must not use up the address's.
      for (let i = 0; i < 5; i++) await refusal(budget.reserve([address, { key: 'victim', max: 1 }], 'x'));
      for (let i = 0; i < 3; i++) await budget.reserve([address, { key: `other-${i}`, max: 1 }], 'x');
      await refusal(budget.reserve([address, { key: 'other-9', max: 1 }], 'x'));
    });
  });
}

describe('RateBudget windows', () => {
  it('answers retryAfter until the end of the window that began with the first reservation', async () => {
    let now = 1_000_000;
    const budget = new RateBudget(createMemoryCache(), 600, () => now);
    await budget.reserve([{ key: 'w', max: 1 }], 'slow down');
    now += 100_000;
    const error = await refusal(budget.reserve([{ key: 'w', max: 1 }], 'slow down'));
    expect(error.message).toBe('slow down');
    expect(error.extensions.retryAfter).toBe(500);
  });

  it('refuses a window that is not a positive integer', () => {
    expect(() => new RateBudget(createMemoryCache(), 0)).toThrow(RangeError);
    expect(() => new RateBudget(createMemoryCache(), 1.5)).toThrow(RangeError);
  });
});

describe('SignInLimiter', () => {
  it('reserves per account and per IP, and a success gives its attempt back', async () => {
    const limiter = new SignInLimiter(createMemoryCache(), {
      maxFailuresPerAccount: 2,
      maxFailuresPerIp: 3,
      windowSeconds: 60,
    });
    await limiter.reserve('a@example.test', '10.0.0.1'); // failed
    const ok = await limiter.reserve('A@Example.test ', '10.0.0.1');
    await ok.refund(); // succeeded
    await limiter.reserve('a@example.test', '10.0.0.1'); // failed
    await refusal(limiter.reserve('a@example.test', '10.0.0.2'));
    // The IP has 2 failures: one more account, then it is locked too.
    await limiter.reserve('b@example.test', '10.0.0.1');
    await refusal(limiter.reserve('c@example.test', '10.0.0.1'));
    // Without an IP (a direct call with no address), the account bound still holds.
    await limiter.reserve('d@example.test', null);
  });
});

describe('RequestBudgets', () => {
  it('counts each request kind on its own, per email, per account and per address', async () => {
    const budgets = new RequestBudgets(createMemoryCache(), {
      perEmail: 2,
      perAddress: 4,
      windowSeconds: 60,
    });
    const ip = '192.0.2.1';
    await budgets.take('password_reset', { email: 'x@example.test', ip });
    await budgets.take('password_reset', { email: 'X@example.test', ip });
    await refusal(budgets.take('password_reset', { email: 'x@example.test', ip }));
    // Another kind, same email: its own budget.
    await budgets.take('sign_up', { email: 'x@example.test', ip });
    // Per account (email changes to ever new addresses).
    await budgets.take('email_change', { email: 'n1@example.test', ip: '192.0.2.2', userId: 'u1' });
    await budgets.take('email_change', { email: 'n2@example.test', ip: '192.0.2.2', userId: 'u1' });
    await refusal(budgets.take('email_change', { email: 'n3@example.test', ip: '192.0.2.2', userId: 'u1' }));
    // Per address, malformed emails (null) included.
    await budgets.take('password_reset', { email: null, ip });
    await budgets.take('password_reset', { email: 'y@example.test', ip });
    await refusal(budgets.take('password_reset', { email: 'z@example.test', ip }));
    await refusal(budgets.take('password_reset', { email: null, ip }));
  });
});
