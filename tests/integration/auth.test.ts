import { createHash, randomUUID } from 'node:crypto';
import type { AivaEvent, EventBus } from '@aiva/shared';
import { createMemoryBus, openSealed } from '@aiva/shared';
import { describeInfra } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessStack, startInProcessStack } from '../helpers/in-process-stack.js';
import { bearer, graphql } from '../helpers/stack.js';

const PAYLOAD = 'accessToken refreshToken expiresIn user { id }';
const SIGN_UP = `mutation SignUp($input: SignUpInput!) { signUp(input: $input) { ${PAYLOAD} } }`;
const SIGN_IN = `mutation SignIn($input: SignInInput!) { signIn(input: $input) { ${PAYLOAD} } }`;
const REFRESH = `mutation Refresh($t: String!) { refreshSession(refreshToken: $t) { ${PAYLOAD} } }`;
const ME = '{ me { id email username firstName lastName emailVerified roles } }';
const PASSWORD = 'correct horse battery';

interface Payload {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  user: { id: string };
}

type Mailbox = Map<string, AivaEvent[]>;

function authSuite(label: string, env: () => Record<string, string>) {
  describe(`auth through the gateway (${label})`, () => {
    let stack: InProcessStack;
    const mailbox: Mailbox = new Map();
    const run = randomUUID().slice(0, 8);
    let seq = 0;
    const person = (overrides: Record<string, string> = {}) => {
      seq++;
      return {
        email: `p${seq}-${run}@example.test`,
        password: PASSWORD,
        username: `p${seq}_${run}`,
        firstName: 'Pat',
        lastName: `Person ${seq}`,
        ...overrides,
      };
    };
    const call = <T = Record<string, unknown>>(
      query: string,
      variables?: Record<string, unknown>,
      token?: string,
    ) => graphql<T>(stack.gatewayUrl, query, variables, token ? bearer(token) : {});
    const signUp = async (input = person()) => {
      const result = await call<{ signUp: Payload }>(SIGN_UP, { input });
      expect(result.body.errors).toBeUndefined();
      return { ...result.body.data!.signUp, input };
    };
    const signIn = (email: string, password: string) =>
      call<{ signIn: Payload }>(SIGN_IN, { input: { email, password } });
    const refresh = (token: string) => call<{ refreshSession: Payload }>(REFRESH, { t: token });
    const codeOf = (result: { body: { errors?: Array<{ extensions?: Record<string, unknown> }> } }) =>
      result.body.errors?.[0]?.extensions?.code;
    /** The mail an event asks for, its token opened as the mail sender would (tokens travel sealed). */
    const mailFor = async (type: string, email: string) => {
      for (let i = 0; i < 100; i++) {
        const found = mailbox.get(type)?.find((e) => (e.data as { email: string }).email === email);
        if (found) {
          const data = found.data as { token?: string; userId: string };
          if (data.token === undefined) return data as { token: string; userId: string };
          expect(data.token).toMatch(/^sealed:v1:/);
          return { ...data, token: openSealed(data.token, stack.auth.sealing) };
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error(`no ${type} event for ${email}`);
    };

    beforeAll(async () => {
      const bus = createMemoryBus();
      for (const type of [
        'aiva.auth.password_reset.requested.v1',
        'aiva.auth.email_verification.requested.v1',
        'aiva.auth.user.registered.v1',
      ] as const) {
        await bus.subscribe(`test.mailbox-${run}`, type, async (event) => {
          mailbox.set(type, [...(mailbox.get(type) ?? []), event as AivaEvent]);
        });
      }
      stack = await startInProcessStack({
        // Every sign-up of this suite comes from one address: the per-address budget is tested elsewhere
        // (security-budgets.test.ts).
        env: { AIVA_ADMIN_EMAILS: `boss-${run}@example.test`, AUTH_REQUESTS_PER_ADDRESS: '1000', ...env() },
        bus,
      });
    });
    afterAll(async () => {
      await stack?.stop();
    });

    it('signs up and answers `me` with the full profile at once', async () => {
      const input = person();
      const payload = await signUp(input);
      expect(payload.accessToken.split('.')).toHaveLength(3);
      expect(payload.expiresIn).toBe(900);
      const me = await call<{ me: Record<string, unknown> }>(ME, {}, payload.accessToken);
      expect(me.body).toEqual({
        data: {
          me: {
            id: payload.user.id,
            email: input.email,
            username: input.username,
            firstName: 'Pat',
            lastName: input.lastName,
            emailVerified: false,
            roles: ['user'],
          },
        },
      });
      expect(await mailFor('aiva.auth.user.registered.v1', input.email)).toMatchObject({
        id: payload.user.id,
      });
    });

    it('answers `me` with null without a token', async () => {
      expect((await call(ME)).body).toEqual({ data: { me: null } });
    });

    it('rejects bad sign-up input with the field named, creating nothing', async () => {
      const cases: Array<[Record<string, string>, string, string]> = [
        [{ password: 'short' }, 'BAD_USER_INPUT', 'password'],
        [{ password: 'x'.repeat(129) }, 'BAD_USER_INPUT', 'password'],
        [{ email: 'not-an-email' }, 'BAD_USER_INPUT', 'email'],
        [{ username: 'a b' }, 'BAD_USER_INPUT', 'username'],
      ];
      for (const [overrides, code, field] of cases) {
        const input = person(overrides);
        const result = await call(SIGN_UP, { input });
        expect(result.body.errors?.[0]?.extensions, JSON.stringify(overrides)).toMatchObject({ code, field });
        expect(codeOf(await signIn(input.email, input.password))).toBe('UNAUTHENTICATED');
      }
      const sameAsEmail = person();
      const weak = await call(SIGN_UP, {
        input: { ...sameAsEmail, password: sameAsEmail.email.toUpperCase() },
      });
      expect(weak.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'password' });
    });

    it('rejects a duplicate email or username with CONFLICT', async () => {
      const first = await signUp();
      const sameEmail = await call(SIGN_UP, { input: person({ email: first.input.email.toUpperCase() }) });
      expect(sameEmail.body.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', field: 'email' });
      const other = person({ username: first.input.username });
      const sameUsername = await call(SIGN_UP, { input: other });
      expect(sameUsername.body.errors?.[0]?.extensions).toMatchObject({
        code: 'CONFLICT',
        field: 'username',
      });
      expect(codeOf(await signIn(other.email, other.password))).toBe('UNAUTHENTICATED');
    });

    it('signs in, and answers a wrong password and an unknown email alike', async () => {
      const { input } = await signUp();
      const ok = await signIn(input.email.toUpperCase(), PASSWORD);
      expect(ok.body.data?.signIn.user.id).toBeDefined();
      const wrong = await signIn(input.email, 'wrong password!');
      const unknown = await signIn(`nobody-${run}@example.test`, 'wrong password!');
      expect(wrong.body.errors?.[0]).toMatchObject({
        message: 'Email or password is incorrect',
        extensions: { code: 'UNAUTHENTICATED' },
      });
      expect(unknown.body.errors?.[0]?.message).toBe(wrong.body.errors?.[0]?.message);
      expect(unknown.body.errors?.[0]?.extensions).toEqual(wrong.body.errors?.[0]?.extensions);
    });

    it('rotates refresh tokens, and a reused one ends the whole session', async () => {
      const first = await signUp();
      const second = await refresh(first.refreshToken);
      const rotated = second.body.data!.refreshSession;
      expect(rotated.refreshToken).not.toBe(first.refreshToken);
      expect(rotated.user.id).toBe(first.user.id);
      expect(codeOf(await call(ME, {}, rotated.accessToken))).toBeUndefined();
      // The old token again: reuse. The session ends, so the newest token stops working too.
      expect(codeOf(await refresh(first.refreshToken))).toBe('UNAUTHENTICATED');
      expect(codeOf(await refresh(rotated.refreshToken))).toBe('UNAUTHENTICATED');
    });

    it('rejects malformed and forged refresh tokens', async () => {
      const { refreshToken } = await signUp();
      const [sid] = refreshToken.split('.');
      for (const token of ['nope', `${sid}.${'A'.repeat(43)}`, `${randomUUID()}.${'B'.repeat(43)}`]) {
        expect(codeOf(await refresh(token))).toBe('UNAUTHENTICATED');
      }
      // A guess is not reuse: the real token still works.
      expect(codeOf(await refresh(refreshToken))).toBeUndefined();
    });

    it('signs out one session, or every session', async () => {
      const { input, refreshToken, accessToken } = await signUp();
      const other = (await signIn(input.email, PASSWORD)).body.data!.signIn;
      const signOut = await call('mutation($t: String) { signOut(refreshToken: $t) }', { t: refreshToken });
      expect(signOut.body).toEqual({ data: { signOut: true } });
      expect(codeOf(await refresh(refreshToken))).toBe('UNAUTHENTICATED');
      // The ended session's access token is refused at once, not only when it expires.
      const stale = await call('{ me { id } }', {}, accessToken);
      expect(stale.status).toBe(401);
      expect(codeOf(stale)).toBe('UNAUTHENTICATED');
      expect(codeOf(await call('{ me { id } }', {}, other.accessToken))).toBeUndefined();
      expect(codeOf(await refresh(other.refreshToken))).toBeUndefined();
      const third = (await signIn(input.email, PASSWORD)).body.data!.signIn;
      const everywhere = await call('mutation { signOutEverywhere }', {}, third.accessToken);
      expect(everywhere.body).toEqual({ data: { signOutEverywhere: true } });
      expect(codeOf(await refresh(third.refreshToken))).toBe('UNAUTHENTICATED');
      expect(codeOf(await call('{ me { id } }', {}, third.accessToken))).toBe('UNAUTHENTICATED');
      expect(codeOf(await call('{ me { id } }', {}, other.accessToken))).toBe('UNAUTHENTICATED');
      expect(codeOf(await call('mutation { signOutEverywhere }'))).toBe('UNAUTHENTICATED');
    });

    it('changes the password and ends the other sessions', async () => {
      const { input, accessToken, refreshToken } = await signUp();
      const other = (await signIn(input.email, PASSWORD)).body.data!.signIn;
      const CHANGE =
        'mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }';
      const wrong = await call(CHANGE, { c: 'not my password', n: 'a brand new secret' }, accessToken);
      expect(wrong.body.errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'currentPassword',
      });
      const weak = await call(CHANGE, { c: PASSWORD, n: 'short' }, accessToken);
      expect(weak.body.errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'newPassword',
      });
      expect((await call(CHANGE, { c: PASSWORD, n: 'a brand new secret' }, accessToken)).body).toEqual({
        data: { changePassword: true },
      });
      expect(codeOf(await refresh(other.refreshToken))).toBe('UNAUTHENTICATED');
      expect(codeOf(await call('{ me { id } }', {}, other.accessToken))).toBe('UNAUTHENTICATED');
      expect(codeOf(await call('{ me { id } }', {}, accessToken))).toBeUndefined();
      expect(codeOf(await refresh(refreshToken))).toBeUndefined();
      expect(codeOf(await signIn(input.email, PASSWORD))).toBe('UNAUTHENTICATED');
      expect(codeOf(await signIn(input.email, 'a brand new secret'))).toBeUndefined();
    });

    it('resets a password with a single-use token, without revealing which emails exist', async () => {
      const { input, refreshToken } = await signUp();
      const REQUEST = 'mutation($e: String!) { requestPasswordReset(email: $e) }';
      const RESET = 'mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }';
      expect((await call(REQUEST, { e: `ghost-${run}@example.test` })).body).toEqual({
        data: { requestPasswordReset: true },
      });
      expect((await call(REQUEST, { e: 'not even an email' })).body).toEqual({
        data: { requestPasswordReset: true },
      });
      expect((await call(REQUEST, { e: input.email })).body).toEqual({
        data: { requestPasswordReset: true },
      });
      const mail = await mailFor('aiva.auth.password_reset.requested.v1', input.email);
      expect(mail.token.length).toBeGreaterThanOrEqual(43);
      const weak = await call(RESET, { t: mail.token, p: 'short' });
      expect(weak.body.errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'newPassword',
      });
      expect((await call(RESET, { t: mail.token, p: 'reset to this one' })).body).toEqual({
        data: { resetPassword: true },
      });
      const reused = await call(RESET, { t: mail.token, p: 'and again this one' });
      expect(reused.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'token' });
      const forged = await call(RESET, { t: 'A'.repeat(43), p: 'and again this one' });
      expect(forged.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'token' });
      expect(codeOf(await refresh(refreshToken))).toBe('UNAUTHENTICATED');
      expect(codeOf(await signIn(input.email, 'reset to this one'))).toBeUndefined();
      expect(
        mailbox
          .get('aiva.auth.password_reset.requested.v1')
          ?.some((e) => (e.data as { email: string }).email.startsWith('ghost')),
      ).toBe(false);
    });

    it('rejects expired reset and verification tokens, changing nothing', async () => {
      const { input, user } = await signUp();
      const past = new Date(Date.now() - 60_000);
      const tokens = {
        password_reset: randomUUID() + randomUUID(),
        email_verification: randomUUID() + randomUUID(),
      };
      for (const [purpose, token] of Object.entries(tokens)) {
        await stack.auth.accounts.insertToken(
          {
            hash: createHash('sha256').update(token).digest('hex'),
            purpose: purpose as 'password_reset' | 'email_verification',
            accountId: user.id,
            createdAt: new Date(past.getTime() - 3_600_000),
            expiresAt: past,
            usedAt: null,
          },
          [],
        );
      }
      const reset = await call(
        'mutation($t: String!) { resetPassword(token: $t, newPassword: "expired token try") }',
        {
          t: tokens.password_reset,
        },
      );
      expect(reset.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'token' });
      const verify = await call('mutation($t: String!) { verifyEmail(token: $t) }', {
        t: tokens.email_verification,
      });
      expect(verify.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'token' });
      expect(codeOf(await signIn(input.email, PASSWORD))).toBeUndefined();
      const me = await call<{ me: { emailVerified: boolean } }>(
        ME,
        {},
        (await signIn(input.email, PASSWORD)).body.data!.signIn.accessToken,
      );
      expect(me.body.data?.me.emailVerified).toBe(false);
    });

    it('verifies an email with a single-use token', async () => {
      const { input, accessToken } = await signUp();
      expect(codeOf(await call('mutation { requestEmailVerification }'))).toBe('UNAUTHENTICATED');
      expect((await call('mutation { requestEmailVerification }', {}, accessToken)).body).toEqual({
        data: { requestEmailVerification: true },
      });
      const mail = await mailFor('aiva.auth.email_verification.requested.v1', input.email);
      const VERIFY = 'mutation($t: String!) { verifyEmail(token: $t) }';
      expect((await call(VERIFY, { t: mail.token })).body).toEqual({ data: { verifyEmail: true } });
      expect(codeOf(await call(VERIFY, { t: mail.token }))).toBe('BAD_USER_INPUT');
      const me = await call<{ me: { emailVerified: boolean } }>(ME, {}, accessToken);
      expect(me.body.data?.me.emailVerified).toBe(true);
    });

    it('shows sessions, roles and verification to the user themself and admins only', async () => {
      const alice = await signUp();
      const bob = await signUp();
      const SESSIONS = 'query($id: ID!) { user(id: $id) { id sessions { id current userAgent } roles } }';
      const own = await call<{ user: { sessions: Array<{ current: boolean }> } }>(
        SESSIONS,
        { id: alice.user.id },
        alice.accessToken,
      );
      expect(own.body.errors).toBeUndefined();
      expect(own.body.data?.user.sessions.filter((s) => s.current)).toHaveLength(1);
      const theirs = await call(SESSIONS, { id: alice.user.id }, bob.accessToken);
      expect(codeOf(theirs)).toBe('FORBIDDEN');
      // A listed admin email is admin once verified (not at sign-up); the next tokens carry the role.
      const signedUpBoss = await signUp(person({ email: `boss-${run}@example.test` }));
      await call('mutation { requestEmailVerification }', {}, signedUpBoss.accessToken);
      const mail = await mailFor('aiva.auth.email_verification.requested.v1', signedUpBoss.input.email);
      await call('mutation($t: String!) { verifyEmail(token: $t) }', { t: mail.token });
      const boss = (await refresh(signedUpBoss.refreshToken)).body.data!.refreshSession;
      const asAdmin = await call<{ user: { roles: string[] } }>(
        SESSIONS,
        { id: alice.user.id },
        boss.accessToken,
      );
      expect(asAdmin.body.data?.user.roles).toEqual(['user']);
      const bossMe = await call<{ me: { roles: string[] } }>(ME, {}, boss.accessToken);
      expect(bossMe.body.data?.me.roles).toEqual(['user', 'admin']);
      expect(codeOf(await call('{ users(first: 1) { totalCount } }', {}, boss.accessToken))).toBeUndefined();
      expect(codeOf(await call('{ users(first: 1) { totalCount } }', {}, alice.accessToken))).toBe(
        'FORBIDDEN',
      );
    });

    it('limits failed sign-ins per account, also stuffed as aliases in one request', async () => {
      const { input } = await signUp();
      for (let i = 0; i < 5; i++)
        expect(codeOf(await signIn(input.email, `wrong ${i}`))).toBe('UNAUTHENTICATED');
      const blocked = await signIn(input.email, PASSWORD);
      expect(blocked.body.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
      expect(blocked.body.errors?.[0]?.extensions?.retryAfter).toBeGreaterThan(0);

      // Stuffing many attempts into one request gains nothing: mutations run one after another and the first
      // failure ends the operation (signIn is non-null), and every attempt that ran is counted.
      const target = await signUp();
      // (4 aliases: under the operation limits' root-field cap, which refuses more before any resolver runs.)
      const aliases = Array.from(
        { length: 4 },
        (_, i) =>
          `a${i}: signIn(input: { email: "${target.input.email}", password: "guess number ${i}" }) { accessToken }`,
      );
      const stuffed = await call(`mutation { ${aliases.join(' ')} }`);
      expect(stuffed.body.data).toBeNull();
      expect(stuffed.body.errors?.map((e) => e.extensions?.code)).toEqual(['UNAUTHENTICATED']);
      for (let i = 0; i < 4; i++)
        expect(codeOf(await signIn(target.input.email, `wrong ${i}`))).toBe('UNAUTHENTICATED');
      expect(codeOf(await signIn(target.input.email, PASSWORD))).toBe('RATE_LIMITED');
      // Batched HTTP requests (an array of operations) are refused outright.
      const batch = await fetch(stack.gatewayUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([
          { query: SIGN_IN, variables: { input: { email: target.input.email, password: 'x1' } } },
          { query: SIGN_IN, variables: { input: { email: target.input.email, password: 'x2' } } },
        ]),
      });
      expect(batch.status).toBe(400);
    });

    it('serves the JWKS with public keys only', async () => {
      const response = await fetch(`${stack.authUrl}/.well-known/jwks.json`);
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toMatch(/max-age=\d+/);
      const jwks = (await response.json()) as { keys: Array<Record<string, unknown>> };
      expect(jwks).toEqual(stack.auth.keys.jwks());
      expect(jwks.keys.length).toBeGreaterThan(0);
      for (const key of jwks.keys) {
        expect(key).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
        expect(key).not.toHaveProperty('d');
      }
    });

    it('refuses a tampered access token at the gateway', async () => {
      const { accessToken } = await signUp();
      const [header, payload, signature] = accessToken.split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
      const forged = Buffer.from(JSON.stringify({ ...claims, roles: ['user', 'admin'] })).toString(
        'base64url',
      );
      const result = await call(ME, {}, `${header}.${forged}.${signature}`);
      expect(result.status).toBe(401);
      expect(codeOf(result)).toBe('UNAUTHENTICATED');
    });
  });
}

authSuite('embedded SQLite sessions', () => ({}));

await describeInfra(
  'auth with Redis-backed sessions',
  { envVar: 'REDIS_URL', defaultUrl: 'redis://127.0.0.1:6379' },
  (redisUrl) => {
    authSuite('Redis sessions and limits', () => ({
      REDIS_URL: redisUrl,
      AUTH_REDIS_PREFIX: `aiva-test:${randomUUID()}:`,
    }));
  },
);

describe('failed sign-ins per client IP', () => {
  let stack: InProcessStack;
  beforeAll(async () => {
    stack = await startInProcessStack({ env: { SIGNIN_MAX_FAILURES_PER_IP: '3' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('locks out an IP that fails on many accounts, with a retry-after', async () => {
    const attempt = (i: number) =>
      graphql(stack.gatewayUrl, SIGN_IN, {
        input: { email: `spray-${i}@example.test`, password: 'password spraying' },
      });
    for (let i = 0; i < 3; i++)
      expect((await attempt(i)).body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const blocked = await attempt(99);
    expect(blocked.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED' });
    expect(Number(blocked.body.errors?.[0]?.extensions?.retryAfter)).toBeGreaterThan(0);
  });
});

describe('sign-up while the event bus is down', () => {
  let stack: InProcessStack;
  beforeAll(async () => {
    const broken = createMemoryBus();
    const failing: EventBus = {
      ...broken,
      kind: 'memory',
      publish: async () => {
        throw new Error('bus down');
      },
    };
    stack = await startInProcessStack({ bus: failing });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('still answers `me` with the full profile right after signUp', async () => {
    const email = `offline-${randomUUID().slice(0, 8)}@example.test`;
    const result = await graphql<{ signUp: Payload }>(stack.gatewayUrl, SIGN_UP, {
      input: {
        email,
        password: PASSWORD,
        username: `off_${randomUUID().slice(0, 8)}`,
        firstName: 'Off',
        lastName: 'Line',
      },
    });
    expect(result.body.errors).toBeUndefined();
    const me = await graphql<{ me: { email: string; firstName: string } }>(
      stack.gatewayUrl,
      ME,
      {},
      bearer(result.body.data!.signUp.accessToken),
    );
    expect(me.body.data?.me).toMatchObject({ email, firstName: 'Off' });
    // The events wait in the outbox until the bus is back.
    expect((await stack.auth.accounts.pendingEvents(10)).map((e) => e.type)).toContain(
      'aiva.auth.user.registered.v1',
    );
  });
});
