import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessStack, startInProcessStack } from '../helpers/in-process-stack.js';
import { accountKit, codeOf, Mailbox, PASSWORD, waitForValue } from '../helpers/security-kit.js';
import { bearer, graphql } from '../helpers/stack.js';

// Issue #7, private profile data and identity: User.email for the person, admins and services only; the email
// cannot be set through users (squatting); a deleted user's account and sessions end; ended sessions' tokens are
// refused by users and auth reached directly, not only by the gateway.

const USER_EMAIL = 'query($id: ID!) { user(id: $id) { id username email } }';
const UPDATE =
  'mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id email } }';

let stack: InProcessStack;
/** A verified bootstrap admin's tokens. */
let admin: { accessToken: string };
const mailbox = new Mailbox();
const tag = randomUUID().slice(0, 8);
const adminEmail = `chief-${tag}@example.test`;
const gateway = accountKit(() => stack.gatewayUrl, tag);
const usersDirect = () => stack.usersUrl;
const authDirect = () => `${stack.authUrl}/graphql`;

/** A verified bootstrap admin (AIVA_ADMIN_EMAILS), with fresh tokens carrying the role. */
async function signUpAdmin() {
  const signedUp = await gateway.signUp(gateway.person({ email: adminEmail }));
  await gateway.call('mutation { requestEmailVerification }', {}, signedUp.accessToken);
  const mail = await mailbox.next('aiva.auth.email_verification.requested.v1', adminEmail);
  expect(
    (await gateway.call('mutation($t: String!) { verifyEmail(token: $t) }', { t: mail.token })).body,
  ).toEqual({
    data: { verifyEmail: true },
  });
  return (await gateway.refresh(signedUp.refreshToken)).body.data!.refreshSession;
}

beforeAll(async () => {
  const { createMemoryBus } = await import('@aiva/shared');
  const bus = createMemoryBus();
  await mailbox.subscribe(bus);
  stack = await startInProcessStack({
    bus,
    env: { AIVA_ADMIN_EMAILS: adminEmail, AUTH_REQUESTS_PER_ADDRESS: '1000' },
  });
  mailbox.useKeys(stack.auth.sealing);
  admin = await signUpAdmin();
});

afterAll(async () => {
  await stack?.stop();
});

describe('User.email is private', () => {
  it('is null with a FORBIDDEN error for anonymous callers and other people, through the gateway', async () => {
    const victim = await gateway.signUp();
    const other = await gateway.signUp();
    for (const token of [undefined, other.accessToken]) {
      const read = await gateway.call<{ user: { id: string; username: string; email: string | null } }>(
        USER_EMAIL,
        { id: victim.user.id },
        token,
      );
      expect(read.body.data?.user).toEqual({
        id: victim.user.id,
        username: victim.input.username,
        email: null,
      });
      expect(read.body.errors).toHaveLength(1);
      expect(read.body.errors?.[0]).toMatchObject({
        path: ['user', 'email'],
        extensions: { code: 'FORBIDDEN' },
      });
      expect(JSON.stringify(read.body)).not.toContain(victim.input.email);
    }
  });

  it('is refused the same way by users reached directly', async () => {
    const victim = await gateway.signUp();
    const direct = await graphql<{ user: { email: string | null } }>(usersDirect(), USER_EMAIL, {
      id: victim.user.id,
    });
    expect(direct.body.data?.user.email).toBeNull();
    expect(codeOf(direct)).toBe('FORBIDDEN');
    // Entities resolved for another subgraph's query plan: the same rule.
    const entities = await graphql(
      usersDirect(),
      'query($r: [_Any!]!) { _entities(representations: $r) { ... on User { email } } }',
      { r: [{ __typename: 'User', id: victim.user.id }] },
    );
    expect(entities.body.data).toEqual({ _entities: [{ email: null }] });
    expect(codeOf(entities)).toBe('FORBIDDEN');
  });

  it('is visible to the person themself, to admins and to services', async () => {
    const person = await gateway.signUp();
    const own = await gateway.call<{ user: { email: string } }>(
      USER_EMAIL,
      { id: person.user.id },
      person.accessToken,
    );
    expect(own.body).toEqual({
      data: { user: { id: person.user.id, username: person.input.username, email: person.input.email } },
    });
    const me = await gateway.call<{ me: { email: string } }>('{ me { email } }', {}, person.accessToken);
    expect(me.body.data?.me.email).toBe(person.input.email);

    const asAdmin = await gateway.call<{ user: { email: string } }>(
      USER_EMAIL,
      { id: person.user.id },
      admin.accessToken,
    );
    expect(asAdmin.body.errors).toBeUndefined();
    expect(asAdmin.body.data?.user.email).toBe(person.input.email);

    const { token: service } = await stack.auth.keys.sign(
      { sub: 'service:notifications', sid: 'service', roles: ['service'] },
      60,
    );
    const asService = await graphql<{ user: { email: string } }>(
      usersDirect(),
      USER_EMAIL,
      { id: person.user.id },
      bearer(service),
    );
    expect(asService.body.errors).toBeUndefined();
    expect(asService.body.data?.user.email).toBe(person.input.email);
  });
});

describe('email squatting through users', () => {
  it('refuses an email in updateUser, for the person and for admins, through the gateway and directly', async () => {
    const victim = await gateway.signUp();
    const squatter = await gateway.signUp();
    const attempts = [
      { url: stack.gatewayUrl, token: squatter.accessToken, id: squatter.user.id },
      { url: stack.gatewayUrl, token: admin.accessToken, id: squatter.user.id },
      { url: usersDirect(), token: squatter.accessToken, id: squatter.user.id },
    ];
    for (const { url, token, id } of attempts) {
      const result = await graphql(
        url,
        UPDATE,
        { id, input: { email: victim.input.email.toUpperCase() } },
        bearer(token),
      );
      expect(codeOf(result)).toBe('BAD_USER_INPUT');
      expect(result.body.errors?.[0]?.message).toMatch(/"email"/);
    }
    const unused = `free-${tag}@example.test`;
    const free = await gateway.call(
      UPDATE,
      { id: squatter.user.id, input: { email: unused } },
      squatter.accessToken,
    );
    expect(codeOf(free)).toBe('BAD_USER_INPUT');
    const read = await gateway.call<{ user: { email: string } }>(
      USER_EMAIL,
      { id: squatter.user.id },
      squatter.accessToken,
    );
    expect(read.body.data?.user.email).toBe(squatter.input.email);
    // Other fields still change.
    const renamed = await gateway.call(
      'mutation($id: ID!) { updateUser(id: $id, input: { firstName: "Renamed" }) { firstName } }',
      { id: squatter.user.id },
      squatter.accessToken,
    );
    expect(renamed.body).toEqual({ data: { updateUser: { firstName: 'Renamed' } } });
  });
});

describe('deleting a user ends the account', () => {
  const DELETE = 'mutation($id: ID!) { deleteUser(id: $id) }';

  async function expectAccountGone(person: Awaited<ReturnType<typeof gateway.signUp>>) {
    // The account goes when auth has consumed users' deleted event (durable consumer auth.account-removal).
    await waitForValue(
      async () => codeOf(await gateway.signIn(person.input.email, PASSWORD)) === 'UNAUTHENTICATED',
      5_000,
      'sign-in to be refused',
    );
    expect(await stack.auth.accounts.findById(person.user.id)).toBeNull();
    expect(codeOf(await gateway.refresh(person.refreshToken))).toBe('UNAUTHENTICATED');
    const stale = await gateway.call('{ me { id } }', {}, person.accessToken);
    expect(stale.status).toBe(401);
    expect(codeOf(stale)).toBe('UNAUTHENTICATED');
    // Refused by auth and users reached directly too.
    expect(codeOf(await graphql(authDirect(), '{ me { id } }', {}, bearer(person.accessToken)))).toBe(
      'UNAUTHENTICATED',
    );
    expect(
      codeOf(await graphql(usersDirect(), USER_EMAIL, { id: person.user.id }, bearer(person.accessToken))),
    ).toBe('UNAUTHENTICATED');
    expect(await stack.auth.sessions.listActiveForUser(person.user.id, new Date())).toEqual([]);
  }

  it('by the person themself: no sign-in, no refresh, no access token, and the email is free again', async () => {
    const person = await gateway.signUp();
    const second = (await gateway.signIn(person.input.email, PASSWORD)).body.data!.signIn;
    const deleted = await gateway.call(DELETE, { id: person.user.id }, person.accessToken);
    expect(deleted.body).toEqual({ data: { deleteUser: true } });
    await expectAccountGone(person);
    expect(codeOf(await gateway.refresh(second.refreshToken))).toBe('UNAUTHENTICATED');
    // A new sign-up with the same email is a new person.
    const again = await gateway.signUp({ ...person.input, username: `again_${tag}` });
    expect(again.user.id).not.toBe(person.user.id);
  });

  it('by an admin: the same', async () => {
    const person = await gateway.signUp();
    const deleted = await gateway.call(DELETE, { id: person.user.id }, admin.accessToken);
    expect(deleted.body).toEqual({ data: { deleteUser: true } });
    await expectAccountGone(person);
  });
});

describe('an ended session is refused by the subgraphs reached directly', () => {
  it('users and auth refuse the access token of a signed-out session', async () => {
    const person = await gateway.signUp();
    const other = (await gateway.signIn(person.input.email, PASSWORD)).body.data!.signIn;
    const ownEmail = () =>
      graphql(usersDirect(), USER_EMAIL, { id: person.user.id }, bearer(person.accessToken));
    expect(codeOf(await ownEmail())).toBeUndefined();

    const out = await gateway.call('mutation { signOut }', {}, person.accessToken);
    expect(out.body).toEqual({ data: { signOut: true } });

    const refused = await ownEmail();
    expect(refused.status).toBe(401);
    expect(codeOf(refused)).toBe('UNAUTHENTICATED');
    const update = await graphql(
      usersDirect(),
      'mutation($id: ID!) { updateUser(id: $id, input: { firstName: "Ghost" }) { id } }',
      { id: person.user.id },
      bearer(person.accessToken),
    );
    expect(codeOf(update)).toBe('UNAUTHENTICATED');
    expect(
      codeOf(await graphql(authDirect(), 'mutation { signOutEverywhere }', {}, bearer(person.accessToken))),
    ).toBe('UNAUTHENTICATED');
    // The other session is untouched, directly too.
    expect(
      codeOf(await graphql(usersDirect(), USER_EMAIL, { id: person.user.id }, bearer(other.accessToken))),
    ).toBeUndefined();
  });
});
