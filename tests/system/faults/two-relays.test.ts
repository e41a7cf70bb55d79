import { bearer, graphql, waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { countById, duplicateWindowMs, readStream } from '../helpers/nats-stream.js';
import { metricValue, type RunningServices, startServices } from '../helpers/services.js';
import { freePort, type Spawned, spawnNode } from '../helpers/system.js';

// Fault: two instances of users on one store (two processes on one SQLite file), both taking writes, each with
// its outbox relay. Before, both relays published the same rows; JetStream's duplicate window hid it for two
// minutes at most. Now the outbox has a relay lease: one instance publishes, the other stands by (and takes over
// within the lease when the first dies). JetStream's dedupe is not what saves it here: the stream is created with
// a 100 ms duplicate window, and the relays' own counters (aiva_outbox_published_total) add up to exactly the
// number of events, i.e. no event was published by both.

const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { accessToken user { id } } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id } }`;
const USERS_EVENTS = 'aiva.users.>';
const LEASE_MS = 2_000;

let nats: TestNatsServer;
let services: RunningServices;
let second: Spawned;
let secondBase = '';
const people: Array<{ id: string; token: string }> = [];

const metricsOf = async (base: string) => (await fetch(`${base}/metrics`)).text();

beforeAll(async () => {
  nats = await startNatsServer();
  services = await startServices({
    env: {
      NATS_URL: nats.url,
      NATS_DUPLICATE_WINDOW_MS: '100',
      OUTBOX_RELAY_LEASE_MS: String(LEASE_MS),
      AUTH_REQUESTS_PER_ADDRESS: '100000',
    },
  });
  // The second instance: same environment and DATA_DIR (so the same users.sqlite), another port.
  const port = await freePort();
  secondBase = `http://127.0.0.1:${port}`;
  second = spawnNode(['subgraphs/users/src/main.ts'], { ...services.env.users, USERS_PORT: String(port) });
  await waitFor(
    async () => (await fetch(`${secondBase}/health`).catch(() => null))?.ok,
    60_000,
    'the second users instance',
  );
}, 120_000);

afterAll(async () => {
  if (second && second.child.exitCode === null) {
    second.child.kill('SIGKILL');
    await second.exited;
  }
  await services?.stop();
  await nats?.stop();
});

describe('two relays of one service on one outbox', { timeout: 120_000 }, () => {
  let expected = 0;

  it('publish each event once, from one instance only', async () => {
    expect(await duplicateWindowMs(nats.url)).toBe(100);
    for (let i = 0; i < 8; i++) {
      const result = await graphql<{ signUp: { accessToken: string; user: { id: string } } }>(
        services.gatewayUrl,
        SIGN_UP,
        {
          input: {
            email: `two-${i}@example.test`,
            password: 'a long password',
            username: `two${i}`,
            firstName: 'T',
            lastName: 'R',
          },
        },
      );
      expect(result.body.errors).toBeUndefined();
      people.push({ id: result.body.data!.signUp.user.id, token: result.body.data!.signUp.accessToken });
    }
    // Both instances take writes, concurrently.
    const bases = [services.base.users, secondBase];
    await Promise.all(
      people.map(async (person, p) => {
        for (let i = 0; i < 6; i++) {
          const base = bases[(p + i) % 2]!;
          const result = await graphql(
            `${base}/graphql`,
            UPDATE,
            { id: person.id, input: { firstName: `Name${i}` } },
            bearer(person.token),
          );
          expect(result.body.errors).toBeUndefined();
        }
      }),
    );
    expected = people.length * 7; // one created and six updated events each

    await waitFor(
      async () => (await readStream(nats.url, { subject: USERS_EVENTS })).length >= expected,
      20_000,
      'every users event in the stream',
    );
    // Give a second (wrongly) publishing relay time to show itself, then count.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const events = await readStream(nats.url, { subject: USERS_EVENTS });
    expect(events).toHaveLength(expected);
    expect([...countById(events).values()].filter((n) => n !== 1)).toEqual([]);

    const [first, other] = await Promise.all([metricsOf(services.base.users), metricsOf(secondBase)]);
    const leaders = [first, other].map((text) => metricValue(text, 'aiva_outbox_relay_leader'));
    expect(leaders.sort()).toEqual([0, 1]);
    const published = [first, other].map((text) => metricValue(text, 'aiva_outbox_published_total'));
    // Not deduplicated by JetStream: the relays together published each event exactly once.
    expect(published[0]! + published[1]!).toBe(expected);
    expect(published).toContain(0);
    expect(second.lines.join('\n')).toMatch(/another instance publishes the outbox; standing by/);
  });

  it('the standby takes over when the publishing instance dies', async () => {
    const firstLeads = metricValue(await metricsOf(services.base.users), 'aiva_outbox_relay_leader') === 1;
    const survivor = firstLeads ? secondBase : services.base.users;
    if (firstLeads) await services.kill('users');
    else {
      second.child.kill('SIGKILL');
      await second.exited;
    }
    for (const person of people.slice(0, 3)) {
      const result = await graphql(
        `${survivor}/graphql`,
        UPDATE,
        { id: person.id, input: { lastName: 'After' } },
        bearer(person.token),
      );
      expect(result.body.errors).toBeUndefined();
    }
    expected += 3;
    await waitFor(
      async () => (await readStream(nats.url, { subject: USERS_EVENTS })).length >= expected,
      LEASE_MS * 5,
      'the standby to publish after the lease expired',
    );
    const events = await readStream(nats.url, { subject: USERS_EVENTS });
    expect(events).toHaveLength(expected);
    expect([...countById(events).values()].filter((n) => n !== 1)).toEqual([]);
    await waitFor(
      async () => metricValue(await metricsOf(survivor), 'aiva_outbox_relay_leader') === 1,
      5_000,
      'the survivor to lead',
    );
  });
});
