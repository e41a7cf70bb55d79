import { randomUUID } from 'node:crypto';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusUnavailableError } from '../src/events/bus-errors.js';
import { createNatsBus, durableName, type NatsBus } from '../src/events/nats.js';
import { busContract, describeInfra, userCreated, waitFor } from '../src/testing/index.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('NATS event bus without a server', () => {
  it('names one durable per consumer and type, without NATS-reserved characters', () => {
    expect(durableName('users.audit', 'aiva.users.user.created.v1')).toBe(
      'users_audit__aiva_users_user_created_v1',
    );
    expect(durableName('a b*c>', 'x')).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it('starts without a server: publishes fail fast, subscriptions wait, the state says down', async () => {
    const bus = await createNatsBus({
      url: 'nats://127.0.0.1:1',
      connectTimeoutMs: 200,
      maxReconnectDelayMs: 200,
    });
    try {
      expect(bus.state).toBe('connecting');
      const states: string[] = [];
      const unwatch = bus.watchState((state) => states.push(state));
      expect(states).toEqual(['down']);
      unwatch();
      // Refused before any publish is tried (no waiting on a server that is not there).
      const refused = bus.publish(userCreated());
      await expect(refused).rejects.toBeInstanceOf(BusUnavailableError);
      await expect(refused).rejects.toThrow('NATS is not connected yet');
      await expect(bus.ping()).rejects.toBeInstanceOf(BusUnavailableError);
      await expect(bus.whenUp(300)).rejects.toThrow(/did not connect within 300 ms/);
      // Registered now, pulling once connected.
      const subscription = await bus.subscribe(
        'bus-test.offline',
        'aiva.users.user.created.v1',
        async () => {},
      );
      await subscription.stop();
    } finally {
      await bus.close();
    }
    expect(bus.state).toBe('closed');
  });
});

// Needs NATS with JetStream (NATS_URL, default nats://127.0.0.1:4222). The AIVA streams persist on the server,
// so every run uses fresh consumer names and removes its durables afterwards.
await describeInfra('NATS event bus', { envVar: 'NATS_URL', defaultUrl: 'nats://127.0.0.1:4222' }, (url) => {
  // Short idle pulls keep close() quick (it waits for open pulls to end).
  const makeBus = () => createNatsBus({ url, source: 'bus-test', pullExpiresMs: 1_000 });

  busContract('nats', makeBus, {
    retry: { backoffMs: [50] },
    cleanup: async (bus, consumers) => {
      for (const consumer of consumers) await (bus as NatsBus).removeConsumer(consumer);
    },
  });

  describe('NATS specifics', () => {
    let bus: NatsBus;
    let other: NatsBus;
    const run = randomUUID().slice(0, 8);
    const consumers: string[] = [];
    const consumerName = (label: string) => {
      const name = `bus-test-${run}.${label}`;
      consumers.push(name);
      return name;
    };

    beforeAll(async () => {
      bus = await makeBus();
      other = await makeBus();
    });

    afterAll(async () => {
      for (const consumer of consumers) await bus?.removeConsumer(consumer);
      await Promise.allSettled([bus?.close(), other?.close()]);
    });

    it('shares a durable position between connections (processes) using the same consumer name', async () => {
      const consumer = consumerName('cross-process');
      const [first, second] = [userCreated(), userCreated()];
      const mine = new Set([first.id, second.id]);
      const seen: string[] = [];
      const record = async (event: { id: string }) => {
        if (mine.has(event.id)) seen.push(event.id);
      };
      const subscription = await bus.subscribe(consumer, 'aiva.users.user.created.v1', record);
      await bus.publish(first);
      await waitFor(() => seen.includes(first.id), 5_000, 'first event');
      await subscription.stop();

      await bus.publish(second);
      await other.subscribe(consumer, 'aiva.users.user.created.v1', record);
      await waitFor(() => seen.includes(second.id), 5_000, 'second event on the other connection');
      expect(seen).toEqual([first.id, second.id]);
    });

    it('hands the backlog to the next subscriber at once when stopped mid-delivery', async () => {
      // Regression: a message the server pushed just after the last ack used to wait out the 30 s ack wait.
      const consumer = consumerName('handover');
      const events = Array.from({ length: 6 }, () => userCreated());
      const mine = new Set(events.map((e) => e.id));
      const seen: string[] = [];
      const subscription = await bus.subscribe(consumer, 'aiva.users.user.created.v1', async (event) => {
        if (!mine.has(event.id)) return;
        seen.push(event.id);
        await sleep(30);
      });
      for (const event of events) await bus.publish(event);
      await waitFor(() => seen.length >= 2, 5_000, 'two deliveries');
      await subscription.stop();
      const handled = seen.length;
      expect(handled).toBeLessThan(events.length);

      await other.subscribe(consumer, 'aiva.users.user.created.v1', async (event) => {
        if (mine.has(event.id)) seen.push(event.id);
      });
      await waitFor(() => new Set(seen).size === events.length, 3_000, 'the rest of the backlog');
      expect(seen).toEqual(events.map((e) => e.id));
    });

    it('dead-letters a message that fails validation on receipt, without calling the handler', async () => {
      const consumer = consumerName('invalid');
      const id = randomUUID();
      const calls: string[] = [];
      await bus.subscribe(consumer, 'aiva.users.user.deleted.v1', async (event) => {
        calls.push(event.id);
      });
      // A producer that skipped validation: straight onto the subject, bypassing the bus.
      const nc = await connect({ servers: url });
      try {
        const body = {
          id,
          type: 'aiva.users.user.deleted.v1',
          occurredAt: new Date().toISOString(),
          source: 'rogue',
          data: { id: 'nope' },
        };
        await nc
          .jetstream()
          .publish('aiva.users.user.deleted.v1', new TextEncoder().encode(JSON.stringify(body)), {
            msgID: id,
          });
      } finally {
        await nc.close();
      }
      const letters = await waitFor(
        async () => {
          const list = (await bus.deadLetters(consumer)).filter((l) => l.event.id === id);
          return list.length > 0 ? list : null;
        },
        5_000,
        'the dead letter',
      );
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({ consumer, deliveries: 1 });
      expect(letters[0]?.error).toMatch(/aiva\.users\.user\.deleted\.v1.*data\.id/);
      expect(calls).not.toContain(id);
    });

    it('pings the server', async () => {
      await expect(bus.ping()).resolves.toBeUndefined();
    });
  });
});
