import { randomUUID } from 'node:crypto';
import { type AivaEvent, createMemoryBus } from '@aiva/shared';
import { waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessStack, startInProcessStack } from '../helpers/in-process-stack.js';
import { bearer, type GraphQLResult, graphql } from '../helpers/stack.js';

// The attack of issue 7: one request holding 200 aliased `requestPasswordReset` made 200 reset tokens and 200
// events. With the operation limits (defaults) it is refused before any resolver runs, through the gateway and
// when auth is called directly, and nothing is created; normal federated queries still work.

const RESET_REQUESTED = 'aiva.auth.password_reset.requested.v1';
const SIGN_UP = 'mutation SignUp($input: SignUpInput!) { signUp(input: $input) { accessToken user { id } } }';
const PASSWORD = 'correct horse battery';

let stack: InProcessStack;
const resets: AivaEvent[] = [];
const run = randomUUID().slice(0, 8);
let seq = 0;

const person = () => {
  seq++;
  return {
    email: `limits${seq}-${run}@example.test`,
    password: PASSWORD,
    username: `limits${seq}_${run}`,
    firstName: 'Lim',
    lastName: `Its ${seq}`,
  };
};

async function signUp() {
  const input = person();
  const result = await graphql<{ signUp: { accessToken: string; user: { id: string } } }>(
    stack.gatewayUrl,
    SIGN_UP,
    { input },
  );
  expect(result.body.errors).toBeUndefined();
  return { ...result.body.data!.signUp, email: input.email };
}

const aliased = (count: number, field: string) =>
  Array.from({ length: count }, (_, i) => `r${i}: ${field}`).join(' ');

/** A refusal: as any validation error, HTTP 200 under `accept: application/json` (this client's). */
function expectRefused(result: GraphQLResult, reason: string, limit: number) {
  expect(result.status).toBe(200);
  expect(result.body.data).toBeUndefined();
  const error = result.body.errors?.find((e) => e.extensions?.reason === reason);
  expect(error, JSON.stringify(result.body)).toBeDefined();
  expect(error?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason, limit });
  expect(error?.message).toContain(String(limit));
}

beforeAll(async () => {
  const bus = createMemoryBus();
  await bus.subscribe(`test.limits-${run}`, RESET_REQUESTED, async (event) => {
    resets.push(event as AivaEvent);
  });
  stack = await startInProcessStack({ bus });
});

afterAll(async () => {
  await stack?.stop();
});

describe('mutation stuffing', () => {
  it('refuses 200 aliased requestPasswordReset, at the gateway and at auth, creating no reset', async () => {
    const victim = await signUp();
    const control = await signUp();
    const stuffed = `mutation { ${aliased(200, `requestPasswordReset(email: "${victim.email}")`)} }`;
    for (const url of [stack.gatewayUrl, `${stack.authUrl}/graphql`]) {
      const result = await graphql(url, stuffed);
      expectRefused(result, 'MAX_ROOT_FIELDS', 5);
      expectRefused(result, 'MAX_ALIASES', 30);
    }
    // Six, within the alias limit, are still too many writes for one request.
    const six = `mutation { ${aliased(6, `requestPasswordReset(email: "${victim.email}")`)} }`;
    expectRefused(await graphql(stack.gatewayUrl, six), 'MAX_ROOT_FIELDS', 5);
    expectRefused(await graphql(`${stack.authUrl}/graphql`, six), 'MAX_ROOT_FIELDS', 5);

    // One reset after them: once its event is out, the outbox had nothing else to publish before it.
    const single = await graphql(
      stack.gatewayUrl,
      'mutation($e: String!) { requestPasswordReset(email: $e) }',
      {
        e: control.email,
      },
    );
    expect(single.body).toEqual({ data: { requestPasswordReset: true } });
    await waitFor(() => resets.length > 0, 5_000, 'the control reset event');
    expect(resets.map((event) => (event.data as { userId: string }).userId)).toEqual([control.user.id]);
  });
});

describe('queries', () => {
  it('refuses root-field stuffing, deep, wide and costly queries at the gateway and at users', async () => {
    const { accessToken } = await signUp();
    const headers = bearer(accessToken);
    const address = stack.users.server.app.server.address();
    const usersUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/graphql`;
    // A full page costs 4,775: five of them in one request are over the budget.
    const page = `users(first: 100) { totalCount pageInfo { hasNextPage endCursor } edges { cursor
      node { id email username firstName lastName displayName createdAt updatedAt } } }`;
    for (const url of [stack.gatewayUrl, usersUrl]) {
      expectRefused(
        await graphql(url, `{ ${aliased(21, 'user(id: "x") { id }')} }`, undefined, headers),
        'MAX_ROOT_FIELDS',
        20,
      );
      expectRefused(await graphql(url, `{ ${aliased(5, page)} }`, undefined, headers), 'MAX_COST', 20_000);
      // 14 levels (the fields do not even exist: the depth is refused with the rest, before anything runs).
      const deep = `{ user(id: "x") { ${'a { '.repeat(12)}b${' }'.repeat(12)} } }`;
      expectRefused(await graphql(url, deep, undefined, headers), 'MAX_DEPTH', 12);
      const flood = `{ user(id: "x") { ${'id '.repeat(20_000)} } }`;
      expectRefused(await graphql(url, flood, undefined, headers), 'MAX_TOKENS', 15_000);
    }
  });

  it('serves normal federated queries: me with its profile, a full page of users with their auth fields', async () => {
    const me = await signUp();
    const profile = await graphql<{ me: Record<string, unknown> }>(
      stack.gatewayUrl,
      `{ me { id email username firstName lastName displayName createdAt updatedAt emailVerified roles
             sessions { id createdAt lastUsedAt expiresAt userAgent ip current } } }`,
      undefined,
      bearer(me.accessToken),
    );
    expect(profile.body.errors).toBeUndefined();
    expect(profile.body.data?.me).toMatchObject({ id: me.user.id, email: me.email, roles: ['user'] });

    // An admin's token, signed with auth's own key, for the user list (the largest page, every field).
    const { sid } = JSON.parse(Buffer.from(me.accessToken.split('.')[1]!, 'base64url').toString()) as {
      sid: string;
    };
    const admin = await stack.auth.keys.sign({ sub: me.user.id, sid, roles: ['user', 'admin'] });
    const list = await graphql<{ users: { edges: Array<{ node: { id: string; roles: string[] } }> } }>(
      stack.gatewayUrl,
      `{ users(first: 100) { totalCount pageInfo { hasNextPage endCursor }
           edges { cursor node { id email username firstName lastName displayName createdAt updatedAt
             emailVerified roles sessions { id createdAt lastUsedAt expiresAt userAgent ip current } } } } }`,
      undefined,
      bearer(admin.token),
    );
    expect(list.body.errors).toBeUndefined();
    const mine = list.body.data?.users.edges.find((edge) => edge.node.id === me.user.id);
    expect(mine?.node.roles).toEqual(['user']);
  });
});
