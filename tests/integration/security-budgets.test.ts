import { randomUUID } from 'node:crypto';
import { createMemoryBus } from '@aiva/shared';
import { describeInfra } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessStack, startInProcessStack } from '../helpers/in-process-stack.js';
import { accountKit, codeOf, Mailbox, type Result, SIGN_UP, waitForValue } from '../helpers/security-kit.js';
import { graphql } from '../helpers/stack.js';

// Issue #7, abuse budgets inside auth: requestPasswordReset, requestEmailVerification and signUp are counted per
// email and per client address, whoever calls auth (the gateway, or auth reached directly), in separate requests,
// in parallel floods and stuffed as aliases; unknown emails count exactly like known ones. Defaults: 5 per email,
// 20 per address, per hour (AUTH_REQUESTS_PER_EMAIL, AUTH_REQUESTS_PER_ADDRESS, AUTH_REQUEST_WINDOW_SECONDS).

const REQUEST_RESET = 'mutation($e: String!) { requestPasswordReset(email: $e) }';

/** `true`, or the error code (with retryAfter checked when RATE_LIMITED). */
function outcome(result: Result<{ requestPasswordReset?: boolean; signUp?: unknown }>): string {
  const error = result.body.errors?.[0];
  if (!error) return 'ok';
  if (error.extensions?.code === 'RATE_LIMITED') {
    expect(Number(error.extensions.retryAfter)).toBeGreaterThan(0);
    expect(Number(error.extensions.retryAfter)).toBeLessThanOrEqual(3600);
  }
  return String(error.extensions?.code);
}

const count = (outcomes: string[], what: string) => outcomes.filter((o) => o === what).length;

function budgetSuite(label: string, env: () => Record<string, string>) {
  describe(`abuse budgets (${label})`, () => {
    describe('with the defaults', () => {
      let stack: InProcessStack;
      const mailbox = new Mailbox();
      const kit = accountKit(() => stack.gatewayUrl);

      beforeAll(async () => {
        const bus = createMemoryBus();
        await mailbox.subscribe(bus);
        stack = await startInProcessStack({ bus, env: env() });
        mailbox.useKeys(stack.auth.sealing);
      });
      afterAll(async () => {
        await stack?.stop();
      });

      it('limits password resets per email, answering known and unknown emails alike', async () => {
        const known = await kit.signUp();
        const unknown = `nobody-${kit.tag}@example.test`;
        const knownOutcomes: string[] = [];
        const unknownOutcomes: string[] = [];
        for (let i = 0; i < 6; i++) {
          knownOutcomes.push(outcome(await kit.call(REQUEST_RESET, { e: known.input.email })));
          unknownOutcomes.push(outcome(await kit.call(REQUEST_RESET, { e: unknown })));
        }
        expect(knownOutcomes).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'RATE_LIMITED']);
        expect(unknownOutcomes).toEqual(knownOutcomes);
        // Other case, same email: the same budget.
        expect(outcome(await kit.call(REQUEST_RESET, { e: known.input.email.toUpperCase() }))).toBe(
          'RATE_LIMITED',
        );
        await waitForValue(
          () => mailbox.all('aiva.auth.password_reset.requested.v1', known.input.email).length === 5,
          5_000,
          'five reset mails',
        );
        expect(mailbox.all('aiva.auth.password_reset.requested.v1', known.input.email)).toHaveLength(5);
      });

      it('limits password resets per client address over many emails (20), malformed ones included', async () => {
        // 10 of the address's 20 were used by the test above (refused requests give theirs back).
        const outcomes: string[] = [];
        for (let i = 0; i < 9; i++) {
          outcomes.push(outcome(await kit.call(REQUEST_RESET, { e: `spray-${i}-${kit.tag}@example.test` })));
        }
        outcomes.push(outcome(await kit.call(REQUEST_RESET, { e: 'not even an email' })));
        expect(outcomes.every((o) => o === 'ok')).toBe(true);
        expect(outcome(await kit.call(REQUEST_RESET, { e: `one-more-${kit.tag}@example.test` }))).toBe(
          'RATE_LIMITED',
        );
        expect(outcome(await kit.call(REQUEST_RESET, { e: 'still not an email' }))).toBe('RATE_LIMITED');
        // Auth reached directly: the same address, the same budget.
        const direct = await graphql(`${stack.authUrl}/graphql`, REQUEST_RESET, {
          e: `direct-${kit.tag}@example.test`,
        });
        expect(outcome(direct)).toBe('RATE_LIMITED');
      });

      it('limits sign-ups per email: one account, conflicts, then RATE_LIMITED', async () => {
        const input = kit.person();
        const outcomes: string[] = [];
        for (let i = 0; i < 6; i++) {
          outcomes.push(
            outcome(await kit.call(SIGN_UP, { input: { ...input, username: `${input.username}${i}` } })),
          );
        }
        expect(outcomes).toEqual(['ok', 'CONFLICT', 'CONFLICT', 'CONFLICT', 'CONFLICT', 'RATE_LIMITED']);
      });

      it('limits verification mails per account and address', async () => {
        const person = await kit.signUp();
        const outcomes: string[] = [];
        for (let i = 0; i < 6; i++) {
          const result = await kit.call('mutation { requestEmailVerification }', {}, person.accessToken);
          outcomes.push(outcome(result));
        }
        expect(outcomes).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'RATE_LIMITED']);
        const mails = await waitForValue(
          () => {
            const all = mailbox.all('aiva.auth.email_verification.requested.v1', person.input.email);
            return all.length === 5 ? all : undefined;
          },
          5_000,
          'five verification mails',
        );
        expect(mails).toHaveLength(5);
      });
    });

    describe('parallel floods and aliases (per-address budget out of the way)', () => {
      let stack: InProcessStack;
      const mailbox = new Mailbox();
      const kit = accountKit(() => stack.gatewayUrl);

      beforeAll(async () => {
        const bus = createMemoryBus();
        await mailbox.subscribe(bus);
        stack = await startInProcessStack({ bus, env: { ...env(), AUTH_REQUESTS_PER_ADDRESS: '1000' } });
        mailbox.useKeys(stack.auth.sealing);
      });
      afterAll(async () => {
        await stack?.stop();
      });

      it('lets exactly 5 of 30 parallel reset requests for one email through', async () => {
        const victim = await kit.signUp();
        const results = await Promise.all(
          Array.from({ length: 30 }, () => kit.call(REQUEST_RESET, { e: victim.input.email })),
        );
        const outcomes = results.map(outcome);
        expect(count(outcomes, 'ok')).toBe(5);
        expect(count(outcomes, 'RATE_LIMITED')).toBe(25);
        await waitForValue(
          () => mailbox.all('aiva.auth.password_reset.requested.v1', victim.input.email).length >= 5,
          5_000,
          'the reset mails',
        );
        expect(mailbox.all('aiva.auth.password_reset.requested.v1', victim.input.email)).toHaveLength(5);
      });

      it('counts every alias of stuffed requests: 5 mails however they are packed', async () => {
        const victim = await kit.signUp();
        const aliases = Array.from(
          { length: 4 },
          (_, i) => `r${i}: requestPasswordReset(email: "${victim.input.email}")`,
        ).join(' ');
        const results = await Promise.all(
          Array.from({ length: 4 }, () => kit.call(`mutation { ${aliases} }`)),
        );
        expect(results.some((r) => codeOf(r) === 'RATE_LIMITED')).toBe(true);
        expect(outcome(await kit.call(REQUEST_RESET, { e: victim.input.email }))).toBe('RATE_LIMITED');
        await waitForValue(
          () => mailbox.all('aiva.auth.password_reset.requested.v1', victim.input.email).length >= 5,
          5_000,
          'the reset mails',
        );
        expect(mailbox.all('aiva.auth.password_reset.requested.v1', victim.input.email)).toHaveLength(5);
      });

      it('lets exactly 5 of 20 parallel verification requests through', async () => {
        const person = await kit.signUp();
        const results = await Promise.all(
          Array.from({ length: 20 }, () =>
            kit.call('mutation { requestEmailVerification }', {}, person.accessToken),
          ),
        );
        expect(count(results.map(outcome), 'ok')).toBe(5);
      });

      it('refuses parallel sign-ups with one email past the budget (directly at auth too)', async () => {
        const input = kit.person();
        const direct = `${stack.authUrl}/graphql`;
        const results = await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            graphql(i % 2 ? direct : stack.gatewayUrl, SIGN_UP, {
              input: { ...input, username: `${input.username}_${i}` },
            }),
          ),
        );
        const outcomes = results.map(outcome);
        expect(count(outcomes, 'ok')).toBe(1);
        expect(count(outcomes, 'RATE_LIMITED')).toBe(7);
        expect(count(outcomes, 'ok') + count(outcomes, 'CONFLICT')).toBe(5);
      });
    });

    describe('sign-ups per address (AUTH_REQUESTS_PER_ADDRESS=3)', () => {
      let stack: InProcessStack;
      const kit = accountKit(() => stack.gatewayUrl);

      beforeAll(async () => {
        stack = await startInProcessStack({ env: { ...env(), AUTH_REQUESTS_PER_ADDRESS: '3' } });
      });
      afterAll(async () => {
        await stack?.stop();
      });

      it('lets 3 of 10 parallel sign-ups from one address through, creating 3 profiles', async () => {
        const before = await stack.users.store.count();
        const results = await Promise.all(
          Array.from({ length: 10 }, () => kit.call(SIGN_UP, { input: kit.person() })),
        );
        const outcomes = results.map(outcome);
        expect(count(outcomes, 'ok')).toBe(3);
        expect(count(outcomes, 'RATE_LIMITED')).toBe(7);
        // Refused before anything was created.
        expect(await stack.users.store.count()).toBe(before + 3);
        expect(outcome(await graphql(`${stack.authUrl}/graphql`, SIGN_UP, { input: kit.person() }))).toBe(
          'RATE_LIMITED',
        );
      });
    });
  });
}

budgetSuite('embedded SQLite cache', () => ({}));

await describeInfra(
  'abuse budgets with Redis',
  { envVar: 'REDIS_URL', defaultUrl: 'redis://127.0.0.1:6379' },
  (redisUrl) => {
    budgetSuite('Redis', () => ({ REDIS_URL: redisUrl, AUTH_REDIS_PREFIX: `aiva-test:${randomUUID()}:` }));
  },
);
