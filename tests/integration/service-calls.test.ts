import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessStack, startInProcessStack } from '../helpers/in-process-stack.js';
import { graphql } from '../helpers/stack.js';

// Service calls are not client calls: auth creates each profile by calling users directly with its service
// token, so sign-ups never share one rate-limit bucket at the gateway. (They once went through the public
// gateway as `service:auth`: with a limit of 3 per window, the fourth sign-up of the whole platform failed.)

let stack: InProcessStack;

beforeAll(async () => {
  // 3 requests per client per minute; clients told apart by the X-Forwarded-For of a trusted proxy.
  stack = await startInProcessStack({ env: { RATE_LIMIT_MAX: '3', TRUST_PROXY: '127.0.0.1' } });
});

afterAll(async () => {
  await stack?.stop();
});

describe('sign-ups from many clients', () => {
  it('never exhaust a shared bucket: each client is limited alone, and every sign-up creates its profile', async () => {
    const clients = Array.from({ length: 8 }, (_, i) => `198.51.100.${i + 1}`);
    const results = await Promise.all(
      clients.map((address, i) =>
        graphql<{ signUp: { user: { id: string; username: string } } }>(
          stack.gatewayUrl,
          `mutation { signUp(input: { email: "bucket${i}@example.test", password: "a long password", username: "bucket_${i}", firstName: "B", lastName: "K" }) { user { id username } } }`,
          {},
          { 'x-forwarded-for': address },
        ),
      ),
    );
    expect(results.map((r) => r.body.errors)).toEqual(clients.map(() => undefined));
    expect(results.map((r) => r.body.data?.signUp.user.username).sort()).toEqual(
      clients.map((_, i) => `bucket_${i}`).sort(),
    );

    // One client is still limited on its own: its fourth request of the window is refused.
    const address = '198.51.100.200';
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push(
        (await graphql(stack.gatewayUrl, '{ __typename }', {}, { 'x-forwarded-for': address })).status,
      );
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
  });
});
