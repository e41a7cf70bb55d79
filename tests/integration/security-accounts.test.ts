import { randomUUID } from 'node:crypto';
import { createMemoryBus } from '@aiva/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessStack, startInProcessStack } from '../helpers/in-process-stack.js';
import { accountKit, codeOf, Mailbox, PASSWORD, waitForValue } from '../helpers/security-kit.js';
import { bearer, graphql } from '../helpers/stack.js';

// Issue #7, account flows: admin bootstrap only once the listed address is verified; email changes go through
// auth with the new address verified, users follows by event; a reset ends the other reset links; sessions are
// capped per person, the oldest ended.

const ROLES = '{ me { id email emailVerified roles } }';
const REQUEST_CHANGE =
  'mutation($e: String!, $p: String!) { requestEmailChange(newEmail: $e, currentPassword: $p) }';
const CONFIRM_CHANGE = 'mutation($t: String!) { confirmEmailChange(token: $t) }';
const REQUEST_RESET = 'mutation($e: String!) { requestPasswordReset(email: $e) }';
const RESET = 'mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }';

interface Me {
  me: { id: string; email: string; emailVerified: boolean; roles: string[] };
}

let stack: InProcessStack;
const mailbox = new Mailbox();
const tag = randomUUID().slice(0, 8);
const admins = {
  verify: `admin-verify-${tag}@example.test`,
  reset: `admin-reset-${tag}@example.test`,
  change: `admin-change-${tag}@example.test`,
};
const kit = accountKit(() => stack.gatewayUrl, tag);
const emailChanges: Array<{ id: string; email: string }> = [];

beforeAll(async () => {
  const bus = createMemoryBus();
  await mailbox.subscribe(bus);
  await bus.subscribe(`test.email-changes-${tag}`, 'aiva.auth.user.email_changed.v1', async (event) => {
    emailChanges.push({ id: event.data.id, email: event.data.email });
  });
  stack = await startInProcessStack({
    bus,
    env: {
      AIVA_ADMIN_EMAILS: Object.values(admins).join(','),
      AUTH_REQUESTS_PER_ADDRESS: '1000',
      AUTH_MAX_SESSIONS_PER_USER: '3',
    },
  });
  mailbox.useKeys(stack.auth.sealing);
});

afterAll(async () => {
  await stack?.stop();
});

describe('admin bootstrap', () => {
  it('gives a listed email no admin role at sign-up, only once it is verified', async () => {
    const boss = await kit.signUp(kit.person({ email: admins.verify }));
    const before = await kit.call<Me>(ROLES, {}, boss.accessToken);
    expect(before.body.data?.me).toMatchObject({ emailVerified: false, roles: ['user'] });
    expect(codeOf(await kit.call('{ users(first: 1) { totalCount } }', {}, boss.accessToken))).toBe(
      'FORBIDDEN',
    );
    // Signing in again changes nothing while the address is unproven.
    const again = (await kit.signIn(admins.verify, PASSWORD)).body.data!.signIn;
    expect((await kit.call<Me>(ROLES, {}, again.accessToken)).body.data?.me.roles).toEqual(['user']);

    await kit.call('mutation { requestEmailVerification }', {}, boss.accessToken);
    const mail = await mailbox.next('aiva.auth.email_verification.requested.v1', admins.verify);
    expect(
      (await kit.call('mutation($t: String!) { verifyEmail(token: $t) }', { t: mail.token })).body,
    ).toEqual({
      data: { verifyEmail: true },
    });
    const promoted = (await kit.refresh(boss.refreshToken)).body.data!.refreshSession;
    expect((await kit.call<Me>(ROLES, {}, promoted.accessToken)).body.data?.me).toMatchObject({
      emailVerified: true,
      roles: ['user', 'admin'],
    });
    expect(
      codeOf(await kit.call('{ users(first: 1) { totalCount } }', {}, promoted.accessToken)),
    ).toBeUndefined();
  });

  it('counts a password reset as proof of the address', async () => {
    await kit.signUp(kit.person({ email: admins.reset }));
    await kit.call(REQUEST_RESET, { e: admins.reset });
    const mail = await mailbox.next('aiva.auth.password_reset.requested.v1', admins.reset);
    expect((await kit.call(RESET, { t: mail.token, p: 'a fresh password' })).body).toEqual({
      data: { resetPassword: true },
    });
    const signedIn = (await kit.signIn(admins.reset, 'a fresh password')).body.data!.signIn;
    expect((await kit.call<Me>(ROLES, {}, signedIn.accessToken)).body.data?.me.roles).toEqual([
      'user',
      'admin',
    ]);
  });

  it('counts a confirmed change to a listed address as proof', async () => {
    const person = await kit.signUp();
    await kit.call(REQUEST_CHANGE, { p: PASSWORD, e: admins.change }, person.accessToken);
    const mail = await mailbox.next('aiva.auth.email_change.requested.v1', admins.change);
    // Requesting proves nothing: still a plain user.
    const before = (await kit.refresh(person.refreshToken)).body.data!.refreshSession;
    expect((await kit.call<Me>(ROLES, {}, before.accessToken)).body.data?.me.roles).toEqual(['user']);
    expect((await kit.call(CONFIRM_CHANGE, { t: mail.token })).body).toEqual({
      data: { confirmEmailChange: true },
    });
    const after = (await kit.refresh(before.refreshToken)).body.data!.refreshSession;
    expect((await kit.call<Me>(ROLES, {}, after.accessToken)).body.data?.me.roles).toEqual(['user', 'admin']);
  });
});

describe('changing the email', () => {
  it('request → sealed token to the new address → confirm → account and profile follow', async () => {
    const person = await kit.signUp();
    const newEmail = `moved-${tag}@example.test`;
    expect(codeOf(await kit.call(REQUEST_CHANGE, { p: PASSWORD, e: newEmail }))).toBe('UNAUTHENTICATED');
    expect(
      (await kit.call(REQUEST_CHANGE, { p: PASSWORD, e: newEmail.toUpperCase() }, person.accessToken)).body,
    ).toEqual({
      data: { requestEmailChange: true },
    });
    const mail = await mailbox.next('aiva.auth.email_change.requested.v1', newEmail);
    expect(mail.sealedToken).toMatch(/^sealed:v1:/);
    expect(mail.sealedToken).not.toContain(mail.token);
    expect(mail.event.data).toMatchObject({ userId: person.user.id, previousEmail: person.input.email });
    // Nothing changes before the confirmation.
    expect((await kit.call<Me>(ROLES, {}, person.accessToken)).body.data?.me.email).toBe(person.input.email);

    expect((await kit.call(CONFIRM_CHANGE, { t: mail.token })).body).toEqual({
      data: { confirmEmailChange: true },
    });
    expect(codeOf(await kit.call(CONFIRM_CHANGE, { t: mail.token }))).toBe('BAD_USER_INPUT');
    await waitForValue(
      () => emailChanges.some((c) => c.id === person.user.id && c.email === newEmail),
      5_000,
      'the email_changed event',
    );
    // users' profile follows by event (durable consumer users.email-sync).
    const me = await waitForValue(
      async () => {
        const result = await kit.call<Me>(ROLES, {}, person.accessToken);
        return result.body.data?.me.email === newEmail ? result.body.data.me : undefined;
      },
      5_000,
      'the profile email to follow',
    );
    expect(me).toMatchObject({ emailVerified: true });
    expect(codeOf(await kit.signIn(newEmail, PASSWORD))).toBeUndefined();
    expect(codeOf(await kit.signIn(person.input.email, PASSWORD))).toBe('UNAUTHENTICATED');
    // The sessions stay.
    expect(codeOf(await kit.refresh(person.refreshToken))).toBeUndefined();
  });

  it('answers a taken address like a free one, and refuses it with CONFLICT at confirmation only', async () => {
    const owner = await kit.signUp();
    const person = await kit.signUp();
    const taken = await kit.call(REQUEST_CHANGE, { p: PASSWORD, e: owner.input.email }, person.accessToken);
    const free = await kit.call(
      REQUEST_CHANGE,
      { p: PASSWORD, e: `unused-${tag}@example.test` },
      person.accessToken,
    );
    expect(taken.body).toEqual(free.body);
    expect(taken.body).toEqual({ data: { requestEmailChange: true } });
    const mail = await mailbox.next('aiva.auth.email_change.requested.v1', owner.input.email);
    const confirm = await kit.call(CONFIRM_CHANGE, { t: mail.token });
    expect(confirm.body.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', field: 'email' });
    expect((await kit.call<Me>(ROLES, {}, person.accessToken)).body.data?.me.email).toBe(person.input.email);
    expect(await stack.auth.accounts.findByEmail(owner.input.email)).toMatchObject({ id: owner.user.id });
  });

  it('asks for the current password: a session alone cannot move the address', async () => {
    const person = await kit.signUp();
    const newEmail = `stolen-session-${tag}@example.test`;
    const wrong = await kit.call(REQUEST_CHANGE, { p: 'not my password', e: newEmail }, person.accessToken);
    expect(wrong.body.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'currentPassword',
    });
    const missing = await kit.call(
      'mutation($e: String!) { requestEmailChange(newEmail: $e) }',
      { e: newEmail },
      person.accessToken,
    );
    // A validation error (a required argument missing): refused before any resolver runs.
    expect(missing.body.data).toBeUndefined();
    expect(missing.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await stack.auth.accounts.findByEmail(newEmail)).toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(mailbox.all('aiva.auth.email_change.requested.v1', newEmail)).toEqual([]);
  });

  it('refuses the own address and malformed ones', async () => {
    const person = await kit.signUp();
    const same = await kit.call(
      REQUEST_CHANGE,
      { p: PASSWORD, e: person.input.email.toUpperCase() },
      person.accessToken,
    );
    expect(same.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'newEmail' });
    const bad = await kit.call(REQUEST_CHANGE, { p: PASSWORD, e: 'not an email' }, person.accessToken);
    expect(bad.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'newEmail' });
  });

  it('ends the links sent to the old address (a reset requested before the change no longer works)', async () => {
    const person = await kit.signUp();
    await kit.call(REQUEST_RESET, { e: person.input.email });
    const reset = await mailbox.next('aiva.auth.password_reset.requested.v1', person.input.email);
    const newEmail = `relocated-${tag}@example.test`;
    await kit.call(REQUEST_CHANGE, { p: PASSWORD, e: newEmail }, person.accessToken);
    const change = await mailbox.next('aiva.auth.email_change.requested.v1', newEmail);
    await kit.call(CONFIRM_CHANGE, { t: change.token });
    const stale = await kit.call(RESET, { t: reset.token, p: 'hijacked password' });
    expect(stale.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'token' });
  });
});

describe('password reset links', () => {
  it('a reset ends every other outstanding reset link of the account', async () => {
    const person = await kit.signUp();
    for (let i = 0; i < 3; i++) await kit.call(REQUEST_RESET, { e: person.input.email });
    const mails = await waitForValue(
      () => {
        const all = mailbox.all('aiva.auth.password_reset.requested.v1', person.input.email);
        return all.length === 3 ? all : undefined;
      },
      5_000,
      'three reset mails',
    );
    expect(new Set(mails.map((m) => m.token)).size).toBe(3);
    expect((await kit.call(RESET, { t: mails[1]!.token, p: 'second link wins' })).body).toEqual({
      data: { resetPassword: true },
    });
    for (const other of [mails[0]!, mails[2]!]) {
      const result = await kit.call(RESET, { t: other.token, p: 'another try here' });
      expect(result.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'token' });
    }
    expect(codeOf(await kit.signIn(person.input.email, 'second link wins'))).toBeUndefined();
  });
});

describe('sessions per person (AUTH_MAX_SESSIONS_PER_USER=3)', () => {
  it('ends the oldest session when one more starts, refusing its tokens at once', async () => {
    const first = await kit.signUp();
    const sessions = [first];
    for (let i = 0; i < 3; i++) {
      const next = (await kit.signIn(first.input.email, PASSWORD)).body.data!.signIn;
      sessions.push({ ...next, input: first.input });
    }
    const active = await stack.auth.sessions.listActiveForUser(first.user.id, new Date());
    expect(active).toHaveLength(3);
    expect(codeOf(await kit.refresh(first.refreshToken))).toBe('UNAUTHENTICATED');
    const stale = await kit.call('{ me { id } }', {}, first.accessToken);
    expect(stale.status).toBe(401);
    // users reached directly refuses it too.
    expect(
      codeOf(
        await graphql(
          stack.usersUrl,
          'query($id: ID!) { user(id: $id) { email } }',
          { id: first.user.id },
          bearer(first.accessToken),
        ),
      ),
    ).toBe('UNAUTHENTICATED');
    for (const kept of sessions.slice(1)) {
      expect(codeOf(await kit.call('{ me { id } }', {}, kept.accessToken))).toBeUndefined();
    }
    const listed = await kit.call<{ user: { sessions: Array<{ id: string }> } }>(
      'query($id: ID!) { user(id: $id) { sessions { id } } }',
      { id: first.user.id },
      sessions[3]!.accessToken,
    );
    expect(listed.body.data?.user.sessions).toHaveLength(3);
  });
});
