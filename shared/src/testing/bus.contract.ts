import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busAdminOf, DeadLetterNotFoundError, type EventBusAdmin } from '../events/admin/admin.js';
import type { EventBus, SubscribeOptions, Subscription } from '../events/bus.js';
import type { EventType } from '../events/catalog.js';
import { type AivaEvent, createEvent } from '../events/event.js';

export interface BusContractOptions {
  /** Subscribe options for the retry and dead-letter tests; keep the backoff short (default [20] ms). */
  retry?: SubscribeOptions;
  /** How long to wait for a delivery before failing (default 5000 ms). */
  timeoutMs?: number;
  /** Quiet period used to check that nothing more arrives (default 250 ms). */
  settleMs?: number;
  /**
   * Removes what the suite left on the server, given every consumer name it used (e.g. NATS durables).
   * Runs before the bus is closed.
   */
  cleanup?: (bus: EventBus, consumers: string[]) => Promise<void>;
}

const SOURCE = 'bus-contract';

export function userCreated(overrides: { email?: string } = {}): AivaEvent<'aiva.users.user.created.v1'> {
  const id = randomUUID();
  return createEvent('aiva.users.user.created.v1', SOURCE, {
    id,
    email: overrides.email ?? `u-${id}@example.com`,
    username: `u-${id.slice(0, 8)}`,
    firstName: 'Ada',
    lastName: 'Lovelace',
    displayName: null,
    createdAt: new Date().toISOString(),
  });
}

export function userDeleted(): AivaEvent<'aiva.users.user.deleted.v1'> {
  return createEvent('aiva.users.user.deleted.v1', SOURCE, {
    id: randomUUID(),
    deletedAt: new Date().toISOString(),
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<Exclude<T, null | undefined | false>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as Exclude<T, null | undefined | false>;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * Records what a handler received, restricted to the events of this test: on a shared server other runs
 * may publish the same types at the same time.
 */
class Recorder<T extends EventType> {
  readonly received: AivaEvent<T>[] = [];
  readonly calls = new Map<string, number>();
  private readonly mine = new Set<string>();

  constructor(
    private readonly behaviour: (event: AivaEvent<T>, call: number) => Promise<void> = async () => {},
  ) {}

  expect(...events: AivaEvent[]): this {
    for (const e of events) this.mine.add(e.id);
    return this;
  }

  readonly handler = async (event: AivaEvent<T>): Promise<void> => {
    if (!this.mine.has(event.id)) return;
    const call = (this.calls.get(event.id) ?? 0) + 1;
    this.calls.set(event.id, call);
    await this.behaviour(event, call);
    this.received.push(event);
  };

  ids(): string[] {
    return this.received.map((e) => e.id);
  }

  has(id: string): boolean {
    return this.received.some((e) => e.id === id);
  }
}

/**
 * The EventBus contract, run against every adapter. Consumer names are random per run, so suites against a
 * persistent server (NATS) do not see each other's positions.
 */
export function busContract(
  name: string,
  makeBus: () => Promise<EventBus>,
  options: BusContractOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const settleMs = options.settleMs ?? 250;
  const retry: SubscribeOptions = options.retry ?? { backoffMs: [20] };
  const run = randomUUID().slice(0, 8);
  const consumers: string[] = [];
  const subscriptions: Subscription[] = [];
  let bus: EventBus;

  /** A fresh consumer name shaped like the real ones (`<service>.<purpose>`). */
  const consumerName = (label: string) => {
    const consumer = `contract-${run}.${label}`;
    consumers.push(consumer);
    return consumer;
  };

  async function subscribe<T extends EventType>(
    consumer: string,
    type: T,
    recorder: Recorder<T>,
    subscribeOptions?: SubscribeOptions,
  ): Promise<Subscription> {
    const subscription = await bus.subscribe(consumer, type, recorder.handler, subscribeOptions);
    subscriptions.push(subscription);
    return subscription;
  }

  /** Dead letters of a consumer for one event (a shared server may carry other runs' events). */
  const deadLettersOf = async (consumer: string, eventId: string) =>
    (await bus.deadLetters(consumer)).filter((letter) => letter.event.id === eventId);

  const delivered = (recorder: { has(id: string): boolean }, id: string) =>
    waitFor(() => recorder.has(id), timeoutMs, `delivery of ${id}`);

  /** The admin side of the bus under test: every adapter has one. */
  const adminOf = (): EventBusAdmin => {
    const admin = busAdminOf(bus);
    if (!admin) throw new Error(`The ${bus.kind} bus offers no admin side`);
    return admin;
  };

  /** Waits for the admin's dead letter of one event. */
  const adminDeadLetter = (admin: EventBusAdmin, consumer: string, eventId: string) =>
    waitFor(
      async () => (await admin.deadLetters(consumer)).find((letter) => letter.event.id === eventId),
      timeoutMs,
      `the dead letter of ${eventId}`,
    );

  /** The admin's row of one durable. */
  const consumerRow = async (admin: EventBusAdmin, consumer: string, type: string) =>
    (await admin.consumers()).find((row) => row.consumer === consumer && row.type === type);

  describe(`EventBus contract: ${name}`, () => {
    beforeAll(async () => {
      bus = await makeBus();
    });

    afterAll(async () => {
      if (!bus) return;
      await Promise.allSettled(subscriptions.map((s) => s.stop()));
      try {
        await options.cleanup?.(bus, consumers);
      } finally {
        await bus.close();
      }
    });

    it('delivers a published event with its envelope intact', async () => {
      const event = userCreated();
      const recorder = new Recorder<'aiva.users.user.created.v1'>().expect(event);
      await subscribe(consumerName('deliver'), event.type, recorder);
      await bus.publish(event);
      await delivered(recorder, event.id);
      expect(recorder.received).toEqual([event]);
    });

    it('resolves publish without waiting for handlers', async () => {
      const event = userCreated();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let started = false;
      const recorder = new Recorder<'aiva.users.user.created.v1'>(async () => {
        started = true;
        await gate;
      }).expect(event);
      await subscribe(consumerName('async'), event.type, recorder);
      await bus.publish(event); // would never resolve if publish awaited the blocked handler
      await waitFor(() => started, timeoutMs, 'handler start');
      expect(recorder.received).toEqual([]);
      release();
      await delivered(recorder, event.id);
    });

    it('keeps the position of a durable consumer across stop and subscribe', async () => {
      const consumer = consumerName('durable');
      const first = userCreated();
      const second = userCreated();
      const before = new Recorder<'aiva.users.user.created.v1'>().expect(first, second);
      const subscription = await subscribe(consumer, first.type, before);
      await bus.publish(first);
      await delivered(before, first.id);
      await subscription.stop();

      await bus.publish(second); // published while nobody listens
      await sleep(settleMs);
      expect(before.ids()).toEqual([first.id]);

      const after = new Recorder<'aiva.users.user.created.v1'>().expect(first, second);
      await subscribe(consumer, first.type, after);
      await delivered(after, second.id);
      await sleep(settleMs);
      expect(after.ids()).toEqual([second.id]); // the acked event is not delivered again
    });

    it('delivers every event to each consumer', async () => {
      const event = userCreated();
      const a = new Recorder<'aiva.users.user.created.v1'>().expect(event);
      const b = new Recorder<'aiva.users.user.created.v1'>().expect(event);
      await subscribe(consumerName('fanout-a'), event.type, a);
      await subscribe(consumerName('fanout-b'), event.type, b);
      await bus.publish(event);
      await delivered(a, event.id);
      await delivered(b, event.id);
      expect(a.ids()).toEqual([event.id]);
      expect(b.ids()).toEqual([event.id]);
    });

    it('shares the work between subscriptions of the same consumer name', async () => {
      const consumer = consumerName('shared');
      const events = [userCreated(), userCreated(), userCreated(), userCreated()];
      const a = new Recorder<'aiva.users.user.created.v1'>().expect(...events);
      const b = new Recorder<'aiva.users.user.created.v1'>().expect(...events);
      await subscribe(consumer, 'aiva.users.user.created.v1', a);
      await subscribe(consumer, 'aiva.users.user.created.v1', b);
      for (const event of events) await bus.publish(event);
      await waitFor(
        () => a.received.length + b.received.length >= events.length,
        timeoutMs,
        'all deliveries',
      );
      await sleep(settleMs);
      expect([...a.ids(), ...b.ids()].sort()).toEqual(events.map((e) => e.id).sort());
    });

    it('keeps separate positions for two event types under one consumer name', async () => {
      const consumer = consumerName('two-types');
      const created = userCreated();
      const deleted = userDeleted();
      const onCreated = new Recorder<'aiva.users.user.created.v1'>().expect(created, deleted);
      const onDeleted = new Recorder<'aiva.users.user.deleted.v1'>().expect(created, deleted);
      await subscribe(consumer, created.type, onCreated);
      await subscribe(consumer, deleted.type, onDeleted);
      await bus.publish(created);
      await bus.publish(deleted);
      await delivered(onCreated, created.id);
      await delivered(onDeleted, deleted.id);
      expect(onCreated.ids()).toEqual([created.id]);
      expect(onDeleted.ids()).toEqual([deleted.id]);
    });

    it('delivers an event published twice with the same id once', async () => {
      const event = userCreated();
      const recorder = new Recorder<'aiva.users.user.created.v1'>().expect(event);
      await subscribe(consumerName('dedupe'), event.type, recorder);
      await bus.publish(event);
      await bus.publish(event);
      await bus.publish({ ...event });
      await delivered(recorder, event.id);
      await sleep(settleMs);
      expect(recorder.calls.get(event.id)).toBe(1);
    });

    it('redelivers after a handler failure', async () => {
      const event = userCreated();
      const consumer = consumerName('retry');
      const recorder = new Recorder<'aiva.users.user.created.v1'>(async (_e, call) => {
        if (call === 1) throw new Error('transient failure');
      }).expect(event);
      await subscribe(consumer, event.type, recorder, { ...retry, maxDeliver: 3 });
      await bus.publish(event);
      await delivered(recorder, event.id);
      expect(recorder.calls.get(event.id)).toBe(2);
      expect(recorder.received).toEqual([event]);
      expect(await deadLettersOf(consumer, event.id)).toEqual([]);
    });

    it('dead-letters an event after maxDeliver failed deliveries, with the error', async () => {
      const event = userCreated();
      const consumer = consumerName('dead');
      const recorder = new Recorder<'aiva.users.user.created.v1'>(async (e, call) => {
        throw new Error(`handler broke on ${e.id} (call ${call})`);
      }).expect(event);
      await subscribe(consumer, event.type, recorder, { ...retry, maxDeliver: 3 });
      await bus.publish(event);
      const letters = await waitFor(
        async () => {
          const list = await deadLettersOf(consumer, event.id);
          return list.length > 0 ? list : null;
        },
        timeoutMs,
        'a dead letter',
      );
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({ consumer, event, deliveries: 3 });
      expect(letters[0]?.error).toContain(`handler broke on ${event.id} (call 3)`);
      expect(Number.isNaN(Date.parse(letters[0]?.failedAt ?? ''))).toBe(false);
      await sleep(settleMs);
      expect(recorder.calls.get(event.id)).toBe(3);
      expect(await bus.deadLetters(consumerName('no-letters'))).toEqual([]);
    });

    it('delivers in publish order to one consumer, also across a retry', async () => {
      const events = Array.from({ length: 5 }, () => userCreated());
      const recorder = new Recorder<'aiva.users.user.created.v1'>(async (e, call) => {
        if (e.id === events[0]?.id && call === 1) throw new Error('first event fails once');
      }).expect(...events);
      await subscribe(consumerName('order'), 'aiva.users.user.created.v1', recorder, {
        ...retry,
        maxDeliver: 3,
      });
      for (const event of events) await bus.publish(event);
      await waitFor(() => recorder.received.length === events.length, timeoutMs, 'all deliveries');
      expect(recorder.ids()).toEqual(events.map((e) => e.id));
    });

    it('rejects an event that does not match the catalog, naming the type', async () => {
      const event = userCreated();
      const invalid = { ...event, data: { ...event.data, email: 'not-an-email' } };
      await expect(bus.publish(invalid)).rejects.toThrow(/aiva\.users\.user\.created\.v1.*email/);
      const unknownType = { ...event, type: 'aiva.users.user.renamed.v9' } as unknown as AivaEvent;
      await expect(bus.publish(unknownType)).rejects.toThrow(/aiva\.users\.user\.renamed\.v9/);
      await expect(bus.publish({ ...event, id: 'not-a-uuid' })).rejects.toThrow(/id/);
    });

    it('replays a dead letter to its consumer only, once, and then drops the dead letter', async () => {
      const admin = adminOf();
      const event = userCreated();
      const consumer = consumerName('replay');
      let fixed = false;
      const recorder = new Recorder<'aiva.users.user.created.v1'>(async (_e, call) => {
        if (!fixed) throw new Error(`not fixed yet (call ${call})`);
      }).expect(event);
      const bystander = new Recorder<'aiva.users.user.created.v1'>().expect(event);
      await subscribe(consumer, event.type, recorder, { ...retry, maxDeliver: 2 });
      await subscribe(consumerName('replay-bystander'), event.type, bystander);
      await bus.publish(event);
      await delivered(bystander, event.id);

      const letter = await adminDeadLetter(admin, consumer, event.id);
      expect(letter).toMatchObject({ consumer, type: event.type, event, deliveries: 2 });
      expect(letter.error).toContain('not fixed yet (call 2)');
      expect(letter.id).toMatch(/^[1-9][0-9]*$/);
      expect((await admin.deadLetters()).map((l) => l.id)).toContain(letter.id);
      expect(await consumerRow(admin, consumer, event.type)).toMatchObject({ deadLetters: 1, ackPending: 0 });
      await sleep(settleMs);
      expect(recorder.calls.get(event.id)).toBe(2);

      // The handler is fixed; the operator replays, twice by mistake: the event is delivered once more.
      fixed = true;
      const replays = await Promise.allSettled([admin.replay(letter.id), admin.replay(letter.id)]);
      const results = replays.filter((r) => r.status === 'fulfilled').map((r) => r.value);
      expect(results[0]).toEqual({ id: letter.id, consumer, type: event.type, eventId: event.id });
      for (const replay of replays) {
        if (replay.status === 'rejected') expect(replay.reason).toBeInstanceOf(DeadLetterNotFoundError);
      }
      await delivered(recorder, event.id);
      await waitFor(
        async () => (await deadLettersOf(consumer, event.id)).length === 0,
        timeoutMs,
        'the replayed dead letter to go',
      );
      await sleep(settleMs);
      expect(recorder.calls.get(event.id)).toBe(3);
      expect(recorder.received).toEqual([event]);
      expect(bystander.calls.get(event.id)).toBe(1);
      expect((await admin.deadLetters(consumer)).map((l) => l.id)).not.toContain(letter.id);
      await expect(admin.replay(letter.id)).rejects.toBeInstanceOf(DeadLetterNotFoundError);
    });

    it('replaces the dead letter of a replay that fails again with a new one', async () => {
      const admin = adminOf();
      const event = userCreated();
      const consumer = consumerName('replay-again');
      const recorder = new Recorder<'aiva.users.user.created.v1'>(async (_e, call) => {
        throw new Error(`still broken (call ${call})`);
      }).expect(event);
      await subscribe(consumer, event.type, recorder, { ...retry, maxDeliver: 1 });
      await bus.publish(event);
      const first = await adminDeadLetter(admin, consumer, event.id);
      await admin.replay(first.id);
      const second = await waitFor(
        async () => (await admin.deadLetters(consumer)).find((l) => l.id !== first.id),
        timeoutMs,
        'the new dead letter',
      );
      expect(second).toMatchObject({ consumer, event, deliveries: 1, error: 'still broken (call 2)' });
      await waitFor(
        async () => (await admin.deadLetters(consumer)).length === 1,
        timeoutMs,
        'the old dead letter to go',
      );
      expect(recorder.calls.get(event.id)).toBe(2);
    });

    it('discards a dead letter for good', async () => {
      const admin = adminOf();
      const event = userCreated();
      const consumer = consumerName('discard');
      const recorder = new Recorder<'aiva.users.user.created.v1'>(async () => {
        throw new Error('broken');
      }).expect(event);
      await subscribe(consumer, event.type, recorder, { ...retry, maxDeliver: 1 });
      await bus.publish(event);
      const letter = await adminDeadLetter(admin, consumer, event.id);
      await admin.discard(letter.id);
      expect(await deadLettersOf(consumer, event.id)).toEqual([]);
      await expect(admin.discard(letter.id)).rejects.toBeInstanceOf(DeadLetterNotFoundError);
      await expect(admin.replay(letter.id)).rejects.toBeInstanceOf(DeadLetterNotFoundError);
      await expect(admin.replay('not-an-id')).rejects.toBeInstanceOf(DeadLetterNotFoundError);
    });

    it("reports the streams and each consumer's lag", async () => {
      const admin = adminOf();
      const consumer = consumerName('lag');
      const [first, second] = [userCreated(), userCreated()];
      const recorder = new Recorder<'aiva.users.user.created.v1'>().expect(first, second);
      const subscription = await subscribe(consumer, first.type, recorder);
      await subscription.stop();
      await bus.publish(first);
      await bus.publish(second);
      const behind = await waitFor(
        async () => {
          // Not delivered, or handed back unhandled by the stopped subscription (NATS: nak'ed, ack pending).
          const row = await consumerRow(admin, consumer, first.type);
          return row && row.pending + row.ackPending >= 2 ? row : null;
        },
        timeoutMs,
        'a lag of two events',
      );
      expect(behind).toMatchObject({ consumer, type: first.type, deadLetters: 0 });
      expect(behind.durable).not.toBe('');

      await subscribe(consumer, first.type, recorder);
      await waitFor(() => recorder.received.length === 2, timeoutMs, 'the backlog');
      const caughtUp = await waitFor(
        async () => {
          const row = await consumerRow(admin, consumer, first.type);
          return row && row.pending === 0 && row.ackPending === 0 ? row : null;
        },
        timeoutMs,
        'no lag',
      );
      expect(Number.isNaN(Date.parse(caughtUp.lastDelivered ?? ''))).toBe(false);
      const streams = await admin.streams();
      expect(streams.length).toBeGreaterThan(0);
      expect(streams[0]?.messages).toBeGreaterThan(0);
      expect(streams[0]?.lastSeq).toBeGreaterThanOrEqual(streams[0]?.messages ?? 0);
    });

    it('answers ping while open and refuses to publish after close', async () => {
      const own = await makeBus();
      await expect(own.ping()).resolves.toBeUndefined();
      await own.close();
      await expect(own.publish(userCreated())).rejects.toThrow();
    });
  });
}
