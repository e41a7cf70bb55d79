import { createHash } from 'node:crypto';
import { bearer, graphql } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, type RunningServices, signUpThrough, startServices } from '../helpers/services.js';
import { type SilentServer, startSilentServer } from '../helpers/silent-server.js';

// Fault: a Redis that accepts connections and never answers (a server stuck in a long pause, a black-holed
// load balancer). The gateway and users use it as their cache (rate limits, persisted queries, session
// revocations): a soft dependency. Every Redis command has a deadline (REDIS_COMMAND_TIMEOUT_MS), and what needs
// the cache fails open, so requests are still answered, with their data, well within their own deadline
// (GRAPHQL_REQUEST_TIMEOUT_MS); /ready says "degraded", not "down"; the metric shows the fail-open requests.
// Auth keeps its sessions in SQLite here (sessions in Redis are a hard dependency: see redis-restart.test.ts).

const REQUEST_TIMEOUT_MS = 5_000;
const USER = 'query($id: ID!) { user(id: $id) { id email } }';

let silent: SilentServer;
let services: RunningServices;
let token = '';
let userId = '';

beforeAll(async () => {
  silent = await startSilentServer();
  services = await startServices({
    env: {
      REDIS_COMMAND_TIMEOUT_MS: '300',
      REDIS_CONNECT_TIMEOUT_MS: '500',
      GRAPHQL_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      // Rate limiting on: every gateway request asks the cache first.
      RATE_LIMIT_MAX: '1000',
    },
    perService: {
      gateway: { REDIS_URL: silent.url('redis') },
      users: { REDIS_URL: silent.url('redis') },
      auth: { REDIS_URL: undefined },
    },
  });
  ({ token, userId } = await signUpThrough(services.gatewayUrl, {
    email: 'hangs@example.test',
    password: 'a long password',
    username: 'hangs',
    firstName: 'Redis',
    lastName: 'Hangs',
  }));
}, 120_000);

afterAll(async () => {
  await services?.stop();
  await silent?.close();
});

describe('Redis accepts connections and never answers', { timeout: 60_000 }, () => {
  it('has the services connect to it (the fault is real, not a refused connection)', () => {
    expect(silent.accepted).toBeGreaterThan(0);
  });

  it('answers signed-in requests through the gateway with their data, within their deadline', async () => {
    for (let i = 0; i < 5; i++) {
      const result = await graphql<{ user: { id: string; email: string } }>(
        services.gatewayUrl,
        USER,
        { id: userId },
        bearer(token),
      );
      // No error: a request past its budget would answer DEADLINE_EXCEEDED instead of its data.
      expect(result.body.errors).toBeUndefined();
      // The email is shown to the person themself only: the token was accepted at the gateway and in users.
      expect(result.body.data?.user).toEqual({ id: userId, email: 'hangs@example.test' });
    }
  });

  it('answers requests to users directly too (its revocation check fails open)', async () => {
    const result = await graphql<{ user: { email: string } }>(
      `${services.base.users}/graphql`,
      USER,
      { id: userId },
      bearer(token),
    );
    expect(result.body.data?.user.email).toBe('hangs@example.test');
  });

  it('serves an automatic persisted query although the cache cannot keep it', async () => {
    const query = '{ __typename }';
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    const response = await fetch(services.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, extensions: { persistedQuery: { version: 1, sha256Hash } } }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: { __typename: 'Query' } });
  });

  it('counts the requests served without the cache', async () => {
    const gateway = await services.metrics('gateway');
    expect(
      metricValue(gateway, 'aiva_degraded_requests_total', { dependency: 'cache', feature: 'rate_limit' }),
    ).toBeGreaterThan(0);
    expect(
      metricValue(gateway, 'aiva_degraded_requests_total', {
        dependency: 'cache',
        feature: 'session_revocations',
      }),
    ).toBeGreaterThan(0);
    expect(metricValue(gateway, 'aiva_dependency_up', { dependency: 'cache' })).toBe(0);
    const users = await services.metrics('users');
    expect(
      metricValue(users, 'aiva_degraded_requests_total', {
        dependency: 'cache',
        feature: 'session_revocations',
      }),
    ).toBeGreaterThan(0);
  });

  it('reports the cache as degraded on /ready, and stays ready', async () => {
    const gateway = await services.ready('gateway');
    expect(gateway.status).toBe(200);
    expect(gateway.body).toMatchObject({
      status: 'ready',
      checks: { users: 'up', auth: 'up', cache: 'down' },
      degraded: { cache: 'down' },
    });
    const users = await services.ready('users');
    expect(users.status).toBe(200);
    expect(users.body).toMatchObject({
      status: 'ready',
      checks: { store: 'up' },
      degraded: { cache: 'down' },
    });
  });

  it('logs the outage as state changes, not once per request', async () => {
    for (let i = 0; i < 20; i++) {
      await graphql(services.gatewayUrl, USER, { id: userId }, bearer(token));
    }
    const downLines = services
      .process('gateway')
      .lines.filter((line) => line.includes('"dependency":"cache"') && line.includes('cache is down'));
    expect(downLines.length).toBeGreaterThan(0);
    // 25+ requests went without the cache; each outage (connection given up on) is one line.
    const revocationWarnings = services
      .process('gateway')
      .lines.filter((line) => line.includes('cannot check session revocations'));
    expect(revocationWarnings).toHaveLength(1);
  });
});
