import { bearer, graphql, waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, type RunningServices, signUpThrough, startServices } from '../helpers/services.js';
import { freePort, type Spawned, spawnNode } from '../helpers/system.js';

// Fault: auth (which publishes the JWKS) stopped for longer than the verifiers keep its keys fresh
// (JWKS_REFRESH_SECONDS, 1 s here). The gateway and users keep verifying tokens with the last good keys
// (stale-if-error, up to JWKS_MAX_STALE_SECONDS): valid tokens keep working, and the fallback shows in a metric
// and on /ready. A verifier that never had keys cannot tell a good token from a bad one: it answers HTTP 503
// (reason AUTH_KEYS_UNAVAILABLE), never 401, so clients keep their sessions and retry.

const USER = 'query($id: ID!) { user(id: $id) { id email } }';
const EMAIL = 'stale@example.test';

let services: RunningServices;
const extra: Spawned[] = [];
let token = '';
let userId = '';

/** Starts one more gateway (no keys fetched yet) on a port of its own; resolves with its /graphql URL. */
async function freshGateway(): Promise<string> {
  const port = await freePort();
  const spawned = spawnNode(['gateway/src/main.ts'], { ...services.env.gateway, GATEWAY_PORT: String(port) });
  extra.push(spawned);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${base}/health`).catch(() => null))?.ok, 60_000, 'a fresh gateway');
  return `${base}/graphql`;
}

beforeAll(async () => {
  services = await startServices({ env: { JWKS_REFRESH_SECONDS: '1' } });
  ({ token, userId } = await signUpThrough(services.gatewayUrl, {
    email: EMAIL,
    password: 'a long password',
    username: 'stale',
    firstName: 'J',
    lastName: 'W',
  }));
  // The gateway and users verify the token once: each fetches auth's keys.
  const seen = await graphql<{ user: { email: string } }>(
    services.gatewayUrl,
    USER,
    { id: userId },
    bearer(token),
  );
  expect(seen.body.data?.user.email).toBe(EMAIL);
}, 120_000);

afterAll(async () => {
  for (const spawned of extra) spawned.child.kill('SIGKILL');
  await Promise.all(extra.map((spawned) => spawned.exited));
  await services?.stop();
});

describe('auth stopped for longer than the JWKS cache', { timeout: 90_000 }, () => {
  it('keeps accepting valid tokens at the gateway and in users, with the last good keys', async () => {
    await services.kill('auth');
    // Past the refresh interval: every verification now wants fresh keys and cannot have them.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    for (let i = 0; i < 3; i++) {
      const result = await graphql<{ user: { id: string; email: string } }>(
        services.gatewayUrl,
        USER,
        { id: userId },
        bearer(token),
      );
      expect(result.status).toBe(200);
      expect(result.body.errors).toBeUndefined();
      // The email is shown to the person themself only: both the gateway and users accepted the token.
      expect(result.body.data?.user).toEqual({ id: userId, email: EMAIL });
    }
    const direct = await graphql<{ user: { email: string } }>(
      `${services.base.users}/graphql`,
      USER,
      { id: userId },
      bearer(token),
    );
    expect(direct.body.data?.user.email).toBe(EMAIL);
  });

  it('still refuses a token that is not valid with 401', async () => {
    const result = await graphql(
      services.gatewayUrl,
      USER,
      { id: userId },
      bearer(`${token.slice(0, -4)}AAAA`),
    );
    expect(result.status).toBe(401);
    expect(result.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('shows the stale keys in the metrics and on /ready', async () => {
    for (const service of ['gateway', 'users'] as const) {
      const metrics = await services.metrics(service);
      expect(
        metricValue(metrics, 'aiva_degraded_requests_total', {
          dependency: 'auth_keys',
          feature: 'token_verification',
        }),
      ).toBeGreaterThan(0);
      expect(metricValue(metrics, 'aiva_dependency_up', { dependency: 'auth_keys' })).toBe(0);
    }
    // Users is ready (auth's keys are soft for it) and says what is degraded.
    const users = await services.ready('users');
    expect(users.status).toBe(200);
    expect(users.body.degraded).toMatchObject({ auth_keys: 'down' });
    // The gateway has no instance of auth (a subgraph): not ready; its keys are reported as degraded.
    const gateway = await services.ready('gateway');
    expect(gateway.body.checks).toMatchObject({ users: 'up', auth: 'down' });
    expect(gateway.body.degraded).toMatchObject({ auth_keys: 'down' });
  });

  it('answers HTTP 503 AUTH_KEYS_UNAVAILABLE, not 401, where no keys were ever fetched', async () => {
    const gatewayUrl = await freshGateway();
    const result = await graphql(gatewayUrl, USER, { id: userId }, bearer(token));
    expect(result.status).toBe(503);
    expect(result.body.errors?.[0]?.extensions).toMatchObject({
      code: 'INTERNAL_SERVER_ERROR',
      reason: 'AUTH_KEYS_UNAVAILABLE',
    });
    // Anonymous requests need no keys.
    const anonymous = await graphql(gatewayUrl, '{ __typename }');
    expect(anonymous.status).toBe(200);
  });

  it('verifies with fresh keys once auth is back, without a restart', async () => {
    await services.start('auth');
    const gatewayUrl = await freshGateway();
    await waitFor(
      async () => (await graphql(gatewayUrl, USER, { id: userId }, bearer(token))).status === 200,
      20_000,
      'the fresh gateway to accept the token',
    );
    await waitFor(
      async () => (await services.ready('users')).body.degraded === undefined,
      20_000,
      'users to fetch the keys again',
    );
  });
});
