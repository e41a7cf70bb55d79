import { createNatsBus, type NatsBus } from '@aiva/shared';
import { graphql, waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { countById, readStream } from '../helpers/nats-stream.js';
import { metricValue, type RunningServices, startServices } from '../helpers/services.js';

// Fault: NATS killed for 30 seconds while sign-ups run through the gateway (each one writes a profile in users and
// an account in auth, each with its event in its store's outbox). Every mutation succeeds (the bus is soft: the
// relays keep the events in the outbox, publishes fail fast instead of waiting), /ready stays 200 with `events`
// degraded, and once NATS is back on the same port (its JetStream data kept) every event is in the stream exactly
// once and reaches a durable consumer.

const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { accessToken user { id } } }`;
const DOWN_FOR_MS = 30_000;

let nats: TestNatsServer;
let services: RunningServices;
let subscriber: NatsBus;
const delivered = new Map<string, number>();
let signUps = 0;

async function signUp(): Promise<string> {
  const n = signUps++;
  const result = await graphql<{ signUp: { user: { id: string } } }>(services.gatewayUrl, SIGN_UP, {
    input: {
      email: `nats-down-${n}@example.test`,
      password: 'a long password',
      username: `natsdown${n}`,
      firstName: 'Nats',
      lastName: 'Down',
    },
  });
  expect(result.body.errors).toBeUndefined();
  return result.body.data!.signUp.user.id;
}

beforeAll(async () => {
  nats = await startNatsServer();
  services = await startServices({
    env: {
      NATS_URL: nats.url,
      NATS_CONNECT_TIMEOUT_MS: '500',
      NATS_PUBLISH_TIMEOUT_MS: '1000',
      // Every sign-up comes from this one address: lift auth's per-address budget.
      AUTH_REQUESTS_PER_ADDRESS: '100000',
    },
  });
  // A durable consumer of the test's own, like a service's: it must see every profile created, whatever happens.
  subscriber = await createNatsBus({ url: nats.url, source: 'fault-test', connectTimeoutMs: 500 });
  await subscriber.whenUp(10_000);
  await subscriber.subscribe('fault-test.created', 'aiva.users.user.created.v1', async (event) => {
    delivered.set(event.data.id, (delivered.get(event.data.id) ?? 0) + 1);
  });
}, 120_000);

afterAll(async () => {
  await subscriber?.close();
  await services?.stop();
  await nats?.stop();
});

describe('NATS killed for 30 s during writes', { timeout: 180_000 }, () => {
  const userIds: string[] = [];

  it('writes succeed before, during and after the outage', async () => {
    for (let i = 0; i < 3; i++) userIds.push(await signUp());

    await nats.stop();
    const downSince = Date.now();
    let checkedReady = false;
    while (Date.now() - downSince < DOWN_FOR_MS) {
      userIds.push(await signUp());
      if (!checkedReady && Date.now() - downSince > 3_000) {
        // The bus is soft: users and auth stay in rotation, saying what is degraded.
        for (const service of ['users', 'auth'] as const) {
          const ready = await services.ready(service);
          expect(ready.status).toBe(200);
          expect(ready.body.degraded).toMatchObject({ events: 'down' });
        }
        checkedReady = true;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await waitFor(
      async () =>
        metricValue(await services.metrics('users'), 'aiva_dependency_up', { dependency: 'events' }) === 0,
      5_000,
      'users to report the events down',
    );
    await nats.start();
    for (let i = 0; i < 3; i++) userIds.push(await signUp());
    expect(checkedReady).toBe(true);
    expect(userIds.length).toBeGreaterThan(20);
  });

  it('every event is in the stream exactly once after the restart', async () => {
    await waitFor(
      async () => {
        const created = await readStream(nats.url, { subject: 'aiva.users.user.created.v1' }).catch(() => []);
        return created.length >= userIds.length;
      },
      60_000,
      'every profile event in the stream',
    );
    const created = await readStream(nats.url, { subject: 'aiva.users.user.created.v1' });
    expect(created.map((e) => e.event.data.id).sort()).toEqual([...userIds].sort());
    expect([...countById(created).values()].filter((n) => n !== 1)).toEqual([]);

    await waitFor(
      async () =>
        (await readStream(nats.url, { subject: 'aiva.auth.user.registered.v1' })).length >= userIds.length,
      30_000,
      'every account event in the stream',
    );
    const registered = await readStream(nats.url, { subject: 'aiva.auth.user.registered.v1' });
    expect(registered.map((e) => e.event.data.id).sort()).toEqual([...userIds].sort());
    expect([...countById(registered).values()].filter((n) => n !== 1)).toEqual([]);
  });

  it('every event reaches the durable consumer; the outboxes are empty; one log line per state change', async () => {
    await waitFor(() => delivered.size === userIds.length, 30_000, 'the consumer to see every profile');
    expect([...delivered.keys()].sort()).toEqual([...userIds].sort());
    for (const service of ['users', 'auth'] as const) {
      await waitFor(
        async () => {
          const metrics = await services.metrics(service);
          return (
            metricValue(metrics, 'aiva_outbox_pending') === 0 &&
            metricValue(metrics, 'aiva_dependency_up', { dependency: 'events' }) === 1
          );
        },
        10_000,
        `${service}: outbox empty, events up`,
      );
      const lines = services.process(service).lines;
      expect(lines.filter((l) => l.includes('NATS connection lost')).length).toBe(1);
      expect(lines.filter((l) => l.includes('NATS connection restored')).length).toBe(1);
      // The relay paused once (not once per event or per retry).
      expect(lines.filter((l) => l.includes('outbox publishing paused')).length).toBeLessThanOrEqual(1);
    }
  });
});
