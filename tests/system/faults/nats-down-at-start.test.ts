import { durableName } from '@aiva/shared';
import { bearer, graphql, waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { consumerCaughtUp, countById, readStream } from '../helpers/nats-stream.js';
import { metricValue, type RunningServices, startServices } from '../helpers/services.js';

// Fault: NATS is down when the services start. The bus is a soft dependency (the outbox buffers events): auth and
// users start anyway, answer /health, are ready with `events` degraded, and take writes; their events wait in
// the outbox. When NATS appears they connect by themselves (background reconnect with backoff), create the
// stream, and publish what waited, each event once.

const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { accessToken user { id } } }`;
const SIGN_IN = `mutation($input: SignInInput!) { signIn(input: $input) { accessToken } }`;
const DELETE = 'mutation($id: ID!) { deleteUser(id: $id) }';

let nats: TestNatsServer;
let services: RunningServices;

beforeAll(async () => {
  // A private server on a spare port, stopped before anything connects: the port is known, nothing listens.
  nats = await startNatsServer();
  await nats.stop();
  services = await startServices({
    env: { NATS_URL: nats.url, NATS_CONNECT_TIMEOUT_MS: '500', NATS_PUBLISH_TIMEOUT_MS: '1000' },
  });
}, 120_000);

afterAll(async () => {
  await services?.stop();
  await nats?.stop();
});

describe('a service started with NATS down', { timeout: 120_000 }, () => {
  const userIds: string[] = [];
  const tokens: string[] = [];

  it('serves: /health 200, /ready 200 with the events degraded', async () => {
    for (const service of ['users', 'auth'] as const) {
      expect((await fetch(`${services.base[service]}/health`)).status).toBe(200);
      const ready = await services.ready(service);
      expect(ready.status).toBe(200);
      expect(ready.body.degraded).toMatchObject({ events: 'down' });
      expect(ready.body.checks).toMatchObject({ events: 'down' });
      const metrics = await services.metrics(service);
      expect(metricValue(metrics, 'aiva_dependency_up', { dependency: 'events' })).toBe(0);
    }
    const log = services.process('users').lines.join('\n');
    expect(log).toMatch(/NATS is not reachable: the service runs and connects in the background/);
    expect(log).not.toContain(nats.url);
  });

  it('takes writes: sign-ups succeed, their events wait in the outbox', async () => {
    for (let i = 0; i < 3; i++) {
      const result = await graphql<{ signUp: { accessToken: string; user: { id: string } } }>(
        services.gatewayUrl,
        SIGN_UP,
        {
          input: {
            email: `nats-start-${i}@example.test`,
            password: 'a long password',
            username: `natsstart${i}`,
            firstName: 'Nats',
            lastName: 'Down',
          },
        },
      );
      expect(result.body.errors).toBeUndefined();
      userIds.push(result.body.data!.signUp.user.id);
      tokens.push(result.body.data!.signUp.accessToken);
    }
    // /metrics answers are reused for a second: ask until the gauge shows the rows.
    await waitFor(
      async () => metricValue(await services.metrics('users'), 'aiva_outbox_pending') === 3,
      5_000,
      'aiva_outbox_pending 3 at users',
    );
  });

  it('publishes what waited, once, when NATS appears', async () => {
    await nats.start();
    await waitFor(
      async () => {
        const created = await readStream(nats.url, { subject: 'aiva.users.user.created.v1' }).catch(() => []);
        return created.length >= userIds.length;
      },
      30_000,
      'the events of the sign-ups in the stream',
    );
    const created = await readStream(nats.url, { subject: 'aiva.users.user.created.v1' });
    expect(created.map((e) => e.event.data.id).sort()).toEqual([...userIds].sort());
    expect([...countById(created).values()].every((n) => n === 1)).toBe(true);
    await waitFor(
      async () =>
        (await readStream(nats.url, { subject: 'aiva.auth.user.registered.v1' })).length >= userIds.length,
      30_000,
      'the account events in the stream',
    );
    const registered = await readStream(nats.url, { subject: 'aiva.auth.user.registered.v1' });
    expect(registered.map((e) => e.event.data.id).sort()).toEqual([...userIds].sort());

    for (const service of ['users', 'auth'] as const) {
      await waitFor(
        async () => (await services.ready(service)).body.degraded === undefined,
        10_000,
        `${service} without degradation`,
      );
      await waitFor(
        async () => {
          const metrics = await services.metrics(service);
          return (
            metricValue(metrics, 'aiva_dependency_up', { dependency: 'events' }) === 1 &&
            metricValue(metrics, 'aiva_outbox_pending') === 0
          );
        },
        5_000,
        `${service}: events up, outbox empty`,
      );
    }
    expect(services.process('users').lines.join('\n')).toMatch(/NATS connected: events flow/);
  });

  it('consumes: the subscriptions made while NATS was down work once it is up', async () => {
    // auth subscribed to users' deletions at start, with NATS down; a profile deleted now takes the account along.
    // A consumer new to the server starts with events published after its durable exists: wait for it.
    const durable = durableName('auth.account-removal', 'aiva.users.user.deleted.v1');
    await waitFor(() => consumerCaughtUp(nats.url, durable), 20_000, "auth's durable consumer");
    const deleted = await graphql(services.gatewayUrl, DELETE, { id: userIds[0] }, bearer(tokens[0]!));
    expect(deleted.body.errors).toBeUndefined();
    await waitFor(
      async () =>
        (await readStream(nats.url, { subject: 'aiva.users.user.deleted.v1' })).length === 1 &&
        (await consumerCaughtUp(nats.url, durable)),
      20_000,
      'auth to consume the deletion',
    );
    const signIn = await graphql(services.gatewayUrl, SIGN_IN, {
      input: { email: 'nats-start-0@example.test', password: 'a long password' },
    });
    expect(signIn.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});
