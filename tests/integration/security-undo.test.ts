import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type InProcessStack, startInProcessStack } from '../helpers/in-process-stack.js';
import { accountKit, codeOf, waitForValue } from '../helpers/security-kit.js';

// Issue #7, service calls: when users created the profile but auth could not store the account, the profile's
// removal is recorded in auth's store and retried (AUTH_PROFILE_REMOVAL_RETRY_SECONDS, doubling) until users
// confirms it; never only logged.

/** Nothing listens there: auth's calls to users fail to connect. */
const UNREACHABLE = 'http://127.0.0.1:9/graphql';

let stack: InProcessStack;
const kit = accountKit(() => stack.gatewayUrl);

beforeAll(async () => {
  stack = await startInProcessStack({ env: { AUTH_PROFILE_REMOVAL_RETRY_SECONDS: '1' } });
});

afterAll(async () => {
  await stack?.stop();
});

describe('the undo of a half-done sign-up', () => {
  it('is retried while users is unreachable, and done once it is back', async () => {
    const input = kit.person();
    // Storing the account fails, and users becomes unreachable for auth at that very moment.
    const insert = vi.spyOn(stack.auth.accounts, 'insert').mockImplementationOnce(async () => {
      stack.routeAuthToUsers(UNREACHABLE);
      throw new Error('disk I/O error');
    });
    try {
      const result = await kit.call(
        'mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }',
        { input },
      );
      expect(codeOf(result)).toBe('INTERNAL_SERVER_ERROR');
      expect(JSON.stringify(result.body)).not.toMatch(/disk I\/O/);
    } finally {
      insert.mockRestore();
    }

    // The profile exists (users created it), its removal is recorded with the failed attempt.
    const [pending] = await stack.auth.accounts.pendingProfileRemovals();
    expect(pending?.lastError).toBe('The users service is unavailable');
    expect(pending?.attempts).toBeGreaterThanOrEqual(1);
    const userId = pending!.userId;
    expect(await stack.users.store.findById(userId)).toMatchObject({ email: input.email });
    expect(await stack.auth.accounts.findById(userId)).toBeNull();

    // Retried in the background while users is still unreachable: the entry stays.
    await waitForValue(
      async () => ((await stack.auth.accounts.pendingProfileRemovals())[0]?.attempts ?? 0) >= 2,
      10_000,
      'a second attempt',
    );
    expect(await stack.users.store.findById(userId)).not.toBeNull();

    // users is back: the next retry removes the profile and clears the entry.
    stack.routeAuthToUsers(null);
    await waitForValue(
      async () => (await stack.users.store.findById(userId)) === null,
      15_000,
      'the removal',
    );
    await waitForValue(
      async () => (await stack.auth.accounts.pendingProfileRemovals()).length === 0,
      5_000,
      'the entry to clear',
    );
    // The email and username are free again: the same person can sign up.
    const again = await kit.signUp(input);
    expect(again.user.id).not.toBe(userId);
  });

  it('removes the profile at once when users is reachable', async () => {
    const input = kit.person();
    const insert = vi.spyOn(stack.auth.accounts, 'insert').mockRejectedValueOnce(new Error('disk I/O error'));
    try {
      const result = await kit.call(
        'mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }',
        { input },
      );
      expect(codeOf(result)).toBe('INTERNAL_SERVER_ERROR');
    } finally {
      insert.mockRestore();
    }
    expect(await stack.auth.accounts.pendingProfileRemovals()).toEqual([]);
    expect((await kit.signUp(input)).input.email).toBe(input.email);
  });
});
