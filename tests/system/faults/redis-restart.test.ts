import { bearer, graphql, waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';
import { metricValue, type RunningServices, signUpThrough, startServices } from '../helpers/services.js';
import { freePort, spawnNode } from '../helpers/system.js';

// Fault: the one Redis of AIVA killed (its data gone: no persistence) and started again on the same port.
// For the gateway and users it is a cache (rate limits, persisted queries, session revocations): while it is
// down they serve, unlimited, and count it; for auth it also holds the sessions, a hard dependency: signing in
// answers a clear, retryable error and auth's /ready says not ready. Once Redis is back every connection comes
// back by itself: the rate limit counts again, signing in works, and tokens already issued kept working all along.

const RATE_LIMIT_MAX = 8;
const SIGN_IN = `mutation($input: SignInInput!) { signIn(input: $input) { accessToken refreshToken } }`;
const REFRESH = 'mutation($token: String!) { refreshSession(refreshToken: $token) { accessToken } }';
const USER = 'query($id: ID!) { user(id: $id) { id email } }';
const EMAIL = 'restart@example.test';
const PASSWORD = 'a long password';

let redis: TestRedisServer;
let services: RunningServices;
let token = '';
let userId = '';

/** Sends `count` requests of the signed-in user; returns the number answered RATE_LIMITED. */
async function limitedOf(count: number): Promise<{ limited: number; answered: number }> {
  let limited = 0;
  let answered = 0;
  for (let i = 0; i < count; i++) {
    const result = await graphql<{ user: { email: string } }>(
      services.gatewayUrl,
      USER,
      { id: userId },
      bearer(token),
    );
    if (result.body.errors?.some((error) => error.extensions?.code === 'RATE_LIMITED')) limited++;
    else if (result.body.data?.user.email === EMAIL) answered++;
  }
  return { limited, answered };
}

beforeAll(async () => {
  redis = await startRedisServer();
  services = await startServices({
    env: {
      REDIS_URL: redis.url,
      REDIS_COMMAND_TIMEOUT_MS: '300',
      REDIS_CONNECT_TIMEOUT_MS: '500',
      RATE_LIMIT_MAX: String(RATE_LIMIT_MAX),
      RATE_LIMIT_WINDOW_SECONDS: '600',
    },
  });
  ({ token, userId } = await signUpThrough(services.gatewayUrl, {
    email: EMAIL,
    password: PASSWORD,
    username: 'restart',
    firstName: 'Redis',
    lastName: 'Restart',
  }));
}, 120_000);

afterAll(async () => {
  await services?.stop();
  await redis?.stop();
});

describe('Redis killed and started again', { timeout: 90_000 }, () => {
  it('limits the rate while Redis is up', async () => {
    const { limited } = await limitedOf(RATE_LIMIT_MAX + 2);
    expect(limited).toBeGreaterThan(0);
  });

  it('while Redis is down: serves signed-in requests unlimited, and counts them', async () => {
    await redis.stop();
    const { limited, answered } = await limitedOf(RATE_LIMIT_MAX + 2);
    expect(limited).toBe(0);
    expect(answered).toBe(RATE_LIMIT_MAX + 2);
    const metrics = await services.metrics('gateway');
    expect(
      metricValue(metrics, 'aiva_degraded_requests_total', { dependency: 'cache', feature: 'rate_limit' }),
    ).toBeGreaterThan(0);
  });

  it('while Redis is down: the gateway and users start and serve (Redis is soft for them)', async () => {
    await services.kill('gateway');
    await services.kill('users');
    await services.start('users');
    await services.start('gateway');
    const { answered } = await limitedOf(2);
    expect(answered).toBe(2);
  });

  it('while Redis is down: auth does not start without its sessions, and says why', async () => {
    const port = await freePort();
    const auth = spawnNode(['subgraphs/auth/src/main.ts'], { ...services.env.auth, AUTH_PORT: String(port) });
    const exited = await auth.exited;
    expect(exited.code).toBe(1);
    const fatal = auth.lines.find((line) => line.includes('auth cannot start'));
    expect(fatal).toMatch(/session store \(Redis at REDIS_URL\) did not answer/);
    expect(fatal).not.toContain(redis.url);
  });

  it('while Redis is down: signing in answers a clear, retryable error, and auth is not ready', async () => {
    const signedIn = await graphql(services.gatewayUrl, SIGN_IN, {
      input: { email: EMAIL, password: PASSWORD },
    });
    expect(signedIn.body.data ?? null).toBeNull();
    expect(signedIn.body.errors?.[0]?.extensions).toMatchObject({ code: 'INTERNAL_SERVER_ERROR' });
    expect(signedIn.body.errors?.[0]?.extensions?.reason).toMatch(/^(DEPENDENCY|SESSIONS)_UNAVAILABLE$/);
    const auth = await services.ready('auth');
    expect(auth.status).toBe(503);
    expect(auth.body.checks).toMatchObject({ accounts: 'up', sessions: 'down' });
    // The gateway still reaches auth's instance: it is ready, with its own cache degraded.
    const gateway = await services.ready('gateway');
    expect(gateway.status).toBe(200);
    expect(gateway.body.degraded).toMatchObject({ cache: 'down' });
  });

  it('once Redis is back: every service reconnects by itself', async () => {
    await redis.start();
    for (const service of ['gateway', 'users', 'auth'] as const) {
      await waitFor(
        async () => {
          const { status, body } = await services.ready(service);
          return status === 200 && body.degraded === undefined;
        },
        20_000,
        `${service} to be ready without degradation`,
      );
    }
    const metrics = await services.metrics('gateway');
    expect(metricValue(metrics, 'aiva_dependency_up', { dependency: 'cache' })).toBe(1);
    // One line when it went down, one when it came back (not one per request in between).
    const lines = services.process('gateway').lines;
    expect(lines.filter((line) => line.includes('cache is up again')).length).toBeGreaterThan(0);
  });

  it('once Redis is back: the access token issued before keeps working, and signing in works', async () => {
    const { answered } = await limitedOf(1);
    expect(answered).toBe(1);
    const signedIn = await graphql<{ signIn: { accessToken: string; refreshToken: string } }>(
      services.gatewayUrl,
      SIGN_IN,
      { input: { email: EMAIL, password: PASSWORD } },
    );
    expect(signedIn.body.errors).toBeUndefined();
    const refreshed = await graphql<{ refreshSession: { accessToken: string } }>(
      services.gatewayUrl,
      REFRESH,
      {
        token: signedIn.body.data!.signIn.refreshToken,
      },
    );
    expect(refreshed.body.errors).toBeUndefined();
    expect(refreshed.body.data?.refreshSession.accessToken).toBeTruthy();
  });

  it('once Redis is back: the rate limit counts again', async () => {
    const { limited } = await limitedOf(RATE_LIMIT_MAX + 2);
    expect(limited).toBeGreaterThan(0);
  });
});
