import { randomUUID } from 'node:crypto';
import { describeInfra } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessStack, startInProcessStack } from '../helpers/in-process-stack.js';
import { accountKit, codeOf, PASSWORD, SIGN_IN } from '../helpers/security-kit.js';
import { graphql } from '../helpers/stack.js';

// Issue #7, sign-in races: each attempt is reserved (counted) atomically before the password is checked, so
// parallel wrong guesses cannot all pass a check made before any of them was counted. A success gives its own
// attempt back. SIGNIN_MAX_FAILURES_PER_ACCOUNT (5), SIGNIN_MAX_FAILURES_PER_IP (20), SIGNIN_FAILURE_WINDOW_SECONDS.

function signInSuite(label: string, env: () => Record<string, string>) {
  describe(`parallel sign-ins (${label})`, () => {
    let stack: InProcessStack;
    const kit = accountKit(() => stack.gatewayUrl);

    beforeAll(async () => {
      stack = await startInProcessStack({
        env: { ...env(), SIGNIN_MAX_FAILURES_PER_IP: '1000', AUTH_REQUESTS_PER_ADDRESS: '1000' },
      });
    });
    afterAll(async () => {
      await stack?.stop();
    });

    it('lets at most 5 of 30 parallel wrong guesses reach the password check', async () => {
      const victim = await kit.signUp();
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => kit.signIn(victim.input.email, `wrong guess ${i}`)),
      );
      const codes = results.map(codeOf);
      expect(codes.filter((c) => c === 'UNAUTHENTICATED')).toHaveLength(5);
      expect(codes.filter((c) => c === 'RATE_LIMITED')).toHaveLength(25);
      for (const result of results.filter((r) => codeOf(r) === 'RATE_LIMITED')) {
        expect(Number(result.body.errors?.[0]?.extensions?.retryAfter)).toBeGreaterThan(0);
      }
      // Locked: even the right password is refused now.
      expect(codeOf(await kit.signIn(victim.input.email, PASSWORD))).toBe('RATE_LIMITED');
    });

    it('holds the same bound for guesses sent straight to auth and through the gateway at once', async () => {
      const victim = await kit.signUp();
      const direct = `${stack.authUrl}/graphql`;
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          graphql(i % 2 ? direct : stack.gatewayUrl, SIGN_IN, {
            input: { email: victim.input.email, password: `guess ${i}` },
          }),
        ),
      );
      expect(results.map(codeOf).filter((c) => c === 'UNAUTHENTICATED')).toHaveLength(5);
    });

    it('counts unknown emails the same (no enumeration through the limit)', async () => {
      const ghost = `ghost-${randomUUID().slice(0, 8)}@example.test`;
      const results = await Promise.all(Array.from({ length: 12 }, () => kit.signIn(ghost, 'any password')));
      expect(results.map(codeOf).filter((c) => c === 'UNAUTHENTICATED')).toHaveLength(5);
      expect(results.map(codeOf).filter((c) => c === 'RATE_LIMITED')).toHaveLength(7);
    });

    it('gives a successful attempt back; failures stay counted', async () => {
      const person = await kit.signUp();
      for (let i = 0; i < 4; i++)
        expect(codeOf(await kit.signIn(person.input.email, `typo ${i}`))).toBe('UNAUTHENTICATED');
      for (let i = 0; i < 3; i++)
        expect(codeOf(await kit.signIn(person.input.email, PASSWORD))).toBeUndefined();
      expect(codeOf(await kit.signIn(person.input.email, 'typo 4'))).toBe('UNAUTHENTICATED');
      expect(codeOf(await kit.signIn(person.input.email, PASSWORD))).toBe('RATE_LIMITED');
    });
  });

  describe(`parallel sign-ins per address (${label}, SIGNIN_MAX_FAILURES_PER_IP=6)`, () => {
    let stack: InProcessStack;
    const kit = accountKit(() => stack.gatewayUrl);

    beforeAll(async () => {
      stack = await startInProcessStack({ env: { ...env(), SIGNIN_MAX_FAILURES_PER_IP: '6' } });
    });
    afterAll(async () => {
      await stack?.stop();
    });

    it('lets at most 6 of 24 parallel guesses over many accounts from one address through', async () => {
      const results = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          kit.signIn(`spray-${i}-${kit.tag}@example.test`, 'password spraying'),
        ),
      );
      const codes = results.map(codeOf);
      expect(codes.filter((c) => c === 'UNAUTHENTICATED')).toHaveLength(6);
      expect(codes.filter((c) => c === 'RATE_LIMITED')).toHaveLength(18);
    });
  });
}

signInSuite('embedded SQLite cache', () => ({}));

await describeInfra(
  'parallel sign-ins with Redis',
  { envVar: 'REDIS_URL', defaultUrl: 'redis://127.0.0.1:6379' },
  (redisUrl) => {
    signInSuite('Redis', () => ({ REDIS_URL: redisUrl, AUTH_REDIS_PREFIX: `aiva-test:${randomUUID()}:` }));
  },
);
