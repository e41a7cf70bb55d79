import { createHmac } from 'node:crypto';
import { createTestTokenIssuer, TEST_AUDIENCE, TEST_ISSUER } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type EchoUnderTest,
  echoTypeDefs,
  startEcho,
  startGatewayWith,
} from '../../gateway/test/helpers/echo-stack.js';
import {
  type GatewayUnderTest,
  graphql,
  tokens as issuer,
  startUsers,
  type UsersUnderTest,
  usersTypeDefs,
} from '../helpers/stack.js';

// Both subgraphs in one operation (listing users takes an admin): a rejected request must reach neither.
const QUERY = '{ echo { authorization forwardedFor } users(first: 1) { totalCount } }';
const ECHO = '{ echo { authorization forwardedFor } }';

type EchoResult = {
  echo: { authorization: string | null; forwardedFor: string | null };
  users: { totalCount: number };
};

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const nowSeconds = () => Math.floor(Date.now() / 1000);

let users: UsersUnderTest;
let echo: EchoUnderTest;
let gateway: GatewayUnderTest;

beforeAll(async () => {
  users = await startUsers();
  echo = await startEcho();
  gateway = await startGatewayWith({
    subgraphs: [
      { name: 'users', url: users.url, typeDefs: usersTypeDefs },
      { name: 'echo', url: echo.url, typeDefs: echoTypeDefs },
    ],
    verifier: issuer.verifier,
  });
});

afterAll(async () => {
  await gateway?.app.close();
  await echo?.server.close();
  await users?.app.close();
});

/** Claims like auth's, for tokens that differ from a valid one in one respect. */
function claims(overrides: Record<string, unknown> = {}) {
  return {
    sub: '01890000-0000-7000-8000-000000000042',
    sid: 'session-1',
    roles: ['user'],
    iss: TEST_ISSUER,
    aud: TEST_AUDIENCE,
    iat: nowSeconds(),
    exp: nowSeconds() + 900,
    ...overrides,
  };
}

describe('access tokens at the gateway', () => {
  it('passes a valid token through, and the subgraph receives the same Authorization header', async () => {
    const authorization = `Bearer ${await issuer.adminToken()}`;
    const before = echo.calls();
    const result = await graphql<EchoResult>(gateway.url, QUERY, undefined, { authorization });
    expect(result.status).toBe(200);
    expect(result.body.errors).toBeUndefined();
    expect(result.body.data?.echo.authorization).toBe(authorization);
    expect(result.body.data?.users.totalCount).toBeGreaterThanOrEqual(0);
    expect(echo.calls()).toBe(before + 1);
  });

  it('lets a request without a token proceed anonymously', async () => {
    const result = await graphql<EchoResult>(gateway.url, ECHO);
    expect(result.status).toBe(200);
    expect(result.body.errors).toBeUndefined();
    expect(result.body.data?.echo.authorization).toBeNull();
  });

  it('tells subgraphs the client address it saw, not one the client claims', async () => {
    const result = await graphql<EchoResult>(gateway.url, ECHO, undefined, {
      'x-forwarded-for': '198.51.100.66',
    });
    expect(result.body.data?.echo.forwardedFor).toBe('127.0.0.1');
  });

  const badTokens: Array<[string, () => Promise<string>]> = [
    ['a Basic scheme', async () => 'Basic x'],
    ['Bearer without a token', async () => 'Bearer'],
    ['Bearer with something that is not a JWT', async () => 'Bearer not-a-jwt'],
    [
      'an alg: none token',
      async () => `Bearer ${b64url({ alg: 'none', typ: 'at+jwt' })}.${b64url(claims())}.`,
    ],
    [
      'an HS256 token keyed with the public key',
      async () => {
        const header = b64url({ alg: 'HS256', typ: 'at+jwt', kid: 'test-key' });
        const body = `${header}.${b64url(claims())}`;
        const signature = createHmac('sha256', JSON.stringify(issuer.publicJwk))
          .update(body)
          .digest('base64url');
        return `Bearer ${body}.${signature}`;
      },
    ],
    [
      'an HS256 token keyed with the raw public key bytes',
      async () => {
        const header = b64url({ alg: 'HS256', typ: 'at+jwt', kid: 'test-key' });
        const body = `${header}.${b64url(claims())}`;
        const key = Buffer.from(String(issuer.publicJwk.x), 'base64url');
        return `Bearer ${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
      },
    ],
    ['a token from another issuer', async () => `Bearer ${await issuer.sign(claims({ iss: 'evil-auth' }))}`],
    ['a token for another audience', async () => `Bearer ${await issuer.sign(claims({ aud: 'other-app' }))}`],
    [
      'an expired token',
      async () =>
        `Bearer ${await issuer.sign(claims({ iat: nowSeconds() - 3600, exp: nowSeconds() - 120 }))}`,
    ],
    [
      'a token with a tampered payload',
      async () => {
        const [header, , signature] = (await issuer.token('01890000-0000-7000-8000-000000000042')).split('.');
        return `Bearer ${header}.${b64url(claims({ roles: ['user', 'admin'] }))}.${signature}`;
      },
    ],
    [
      'a token signed by another key with the same kid',
      async () =>
        `Bearer ${await (await createTestTokenIssuer()).token('01890000-0000-7000-8000-000000000042')}`,
    ],
    [
      'a token signed by an unknown key',
      async () =>
        `Bearer ${await (await createTestTokenIssuer('other-key')).token('01890000-0000-7000-8000-000000000042')}`,
    ],
    ['a token of the wrong type', async () => `Bearer ${await issuer.sign(claims(), { typ: 'JWT' })}`],
  ];

  for (const [what, authorization] of badTokens) {
    it(`answers ${what} with HTTP 401 UNAUTHENTICATED, calling no subgraph`, async () => {
      const count = vi.spyOn(users.store, 'count');
      const before = echo.calls();
      try {
        const result = await graphql(gateway.url, QUERY, undefined, { authorization: await authorization() });
        expect(result.status).toBe(401);
        expect(result.headers.get('www-authenticate')).toBe('Bearer');
        expect(result.body.data).toBeUndefined();
        expect(result.body.errors).toHaveLength(1);
        expect(result.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
        // One generic message, whatever was wrong with the token.
        expect([
          'Invalid or expired access token',
          'Authorization must be "Bearer <access token>"',
        ]).toContain(result.body.errors?.[0]?.message);
        expect(echo.calls()).toBe(before);
        expect(count).not.toHaveBeenCalled();
      } finally {
        count.mockRestore();
      }
    });
  }
});

describe('the default verifier (auth JWKS)', () => {
  let defaultGateway: GatewayUnderTest;

  beforeAll(async () => {
    // Nothing listens on port 1: the JWKS cannot be fetched.
    defaultGateway = await startGatewayWith({
      subgraphs: [{ name: 'echo', url: echo.url, typeDefs: echoTypeDefs }],
      env: { AUTH_JWKS_URL: 'http://127.0.0.1:1/.well-known/jwks.json' },
    });
  });

  afterAll(async () => {
    await defaultGateway?.app.close();
  });

  it('serves anonymous requests without fetching any key', async () => {
    const result = await graphql<EchoResult>(defaultGateway.url, '{ echo { authorization } }');
    expect(result.status).toBe(200);
    expect(result.body.data?.echo.authorization).toBeNull();
  });

  // No keys were ever fetched: the token may well be good, so the answer is "try again" (503), never a 401 that
  // would make the client throw its session away.
  it('answers a token it cannot check with HTTP 503 AUTH_KEYS_UNAVAILABLE, not 401', async () => {
    const before = echo.calls();
    const result = await graphql(defaultGateway.url, '{ echo { authorization } }', undefined, {
      authorization: `Bearer ${await issuer.token('01890000-0000-7000-8000-000000000042')}`,
    });
    expect(result.status).toBe(503);
    expect(result.body.errors?.[0]?.extensions).toMatchObject({
      code: 'INTERNAL_SERVER_ERROR',
      reason: 'AUTH_KEYS_UNAVAILABLE',
    });
    expect(echo.calls()).toBe(before);
  });
});
