import { randomUUID } from 'node:crypto';
import {
  type AivaEvent,
  createEvent,
  createLogger,
  createMemoryBus,
  createMemoryCache,
  createNatsBus,
  type EventBus,
  type EventType,
  loadConfig,
  type NatsBus,
  sessionRevocations,
} from '@aiva/shared';
import { createTestTokenIssuer, describeInfra } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usersEnvSchema } from '../src/config.js';
import { openSqliteUserStore } from '../src/store/sqlite.js';
import { createUsersApp, type UsersApp } from '../src/users.app.js';

const logger = createLogger('users-events-test', { level: 'silent' });
const tokens = await createTestTokenIssuer();
const adminToken = await tokens.adminToken();
const TYPES: EventType[] = [
  'aiva.users.user.created.v1',
  'aiva.users.user.updated.v1',
  'aiva.users.user.deleted.v1',
];

async function post(url: string, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: Record<string, { id?: string } | boolean>; errors?: unknown[] };
}

async function eventually(check: () => void | Promise<void>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

/** The users subgraph publishes a catalog event for each committed write, and none for a rejected one. */
function usersEventsSuite(
  label: string,
  makeBus: () => Promise<EventBus>,
  cleanup?: (bus: EventBus, consumer: string) => Promise<void>,
) {
  describe(`users events on the ${label} bus`, () => {
    let bus: EventBus;
    let app: UsersApp;
    let url: string;
    const received: AivaEvent[] = [];
    const ours = new Set<string>();
    const consumer = `users-test-${randomUUID().slice(0, 8)}.audit`;
    const runTag = randomUUID().slice(0, 8);

    beforeAll(async () => {
      bus = await makeBus();
      for (const type of TYPES) {
        await bus.subscribe(consumer, type, async (event) => {
          // A NATS stream outlives test runs: keep only the events about users this run created.
          const data = event.data as { id: string; email?: string };
          if (data.email?.includes(runTag)) ours.add(data.id);
          if (ours.has(data.id)) received.push(event as AivaEvent);
        });
      }
      const config = loadConfig(usersEnvSchema, { USERS_PORT: '0', LOG_LEVEL: 'silent' });
      app = await createUsersApp({
        config,
        logger,
        bus,
        store: openSqliteUserStore({ file: ':memory:' }),
        verifier: tokens.verifier,
        revocations: sessionRevocations(createMemoryCache()),
      });
      url = `${await app.listen()}/graphql`;
    });

    afterAll(async () => {
      await app?.close();
      if (cleanup) await cleanup(bus, consumer);
      await bus?.close();
    });

    it('publishes created, updated and deleted events with the catalog envelope', async () => {
      const created = await post(url, 'mutation($i: CreateUserInput!) { createUser(input: $i) { id } }', {
        i: {
          email: `ev-${runTag}@example.test`,
          username: `ev_${runTag}`,
          firstName: 'Eve',
          lastName: 'Vent',
        },
      });
      const id = (created.data!.createUser as { id: string }).id;
      await post(url, 'mutation($id: ID!) { updateUser(id: $id, input: { lastName: "Changed" }) { id } }', {
        id,
      });
      await post(url, 'mutation($id: ID!) { deleteUser(id: $id) }', { id });

      await eventually(() => expect(received.map((e) => e.type)).toEqual(TYPES));
      const [c, u, d] = received as [
        AivaEvent<'aiva.users.user.created.v1'>,
        AivaEvent<'aiva.users.user.updated.v1'>,
        AivaEvent<'aiva.users.user.deleted.v1'>,
      ];
      expect(c).toMatchObject({
        source: 'users',
        data: { id, email: `ev-${runTag}@example.test`, username: `ev_${runTag}` },
      });
      expect(c.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
      expect(u.data).toMatchObject({ id, lastName: 'Changed', changedFields: ['lastName'] });
      expect(d.data.id).toBe(id);
      expect(new Set(received.map((e) => e.id)).size).toBe(3);
    });

    it('makes the profile email follow the email_changed event of auth, once per event', async () => {
      const created = await post(url, 'mutation($i: CreateUserInput!) { createUser(input: $i) { id } }', {
        i: {
          email: `sync-${runTag}@example.test`,
          username: `sync_${runTag}`,
          firstName: 'Syn',
          lastName: 'Chron',
        },
      });
      const id = (created.data!.createUser as { id: string }).id;
      const changed = createEvent('aiva.auth.user.email_changed.v1', 'auth', {
        id,
        email: `moved-${runTag}@example.test`,
        previousEmail: `sync-${runTag}@example.test`,
        changedAt: new Date().toISOString(),
      });
      await bus.publish(changed);
      // Published twice with the same id (a relay retry): applied once.
      await bus.publish(changed);
      await eventually(async () => {
        expect((await app.store.findById(id))?.email).toBe(`moved-${runTag}@example.test`);
      });
      await eventually(() =>
        expect(
          received.filter(
            (e) => e.type === 'aiva.users.user.updated.v1' && (e.data as { id: string }).id === id,
          ),
        ).toHaveLength(1),
      );
      const update = received.find(
        (e) => e.type === 'aiva.users.user.updated.v1' && (e.data as { id: string }).id === id,
      );
      expect(update?.data).toMatchObject({ email: `moved-${runTag}@example.test`, changedFields: ['email'] });
    });

    it('publishes nothing for a rejected write', async () => {
      const before = received.length;
      const result = await post(
        url,
        'mutation { createUser(input: { email: "bad", username: "x", firstName: "", lastName: "" }) { id } }',
      );
      expect(result.errors).toBeDefined();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(received.length).toBe(before);
      expect(await app.store.pendingEvents(10)).toEqual([]);
    });
  });
}

usersEventsSuite('in-process', async () => createMemoryBus());

await describeInfra(
  'users events on NATS JetStream',
  { envVar: 'NATS_URL', defaultUrl: 'nats://127.0.0.1:4222' },
  (natsUrl) => {
    usersEventsSuite(
      'NATS JetStream',
      () => createNatsBus({ url: natsUrl, source: 'users-test', pullExpiresMs: 1000 }),
      async (bus, consumer) => {
        await (bus as NatsBus).removeConsumer(consumer);
      },
    );
  },
);
