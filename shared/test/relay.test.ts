import { afterEach, describe, expect, it } from 'vitest';
import type { EventBus } from '../src/events/bus.js';
import type { AivaEvent } from '../src/events/event.js';
import { createMemoryBus, type MemoryBus } from '../src/events/memory.js';
import type { OutboxStore } from '../src/events/outbox.js';
import { OutboxRelay } from '../src/events/relay.js';
import { userCreated, waitFor } from '../src/testing/index.js';

/** An outbox in memory: events in write order, each marked published or not. */
class FakeOutbox implements OutboxStore {
  readonly rows: { event: AivaEvent; published: boolean }[] = [];
  readonly marked: string[][] = [];

  write(...events: AivaEvent[]): void {
    for (const event of events) this.rows.push({ event, published: false });
  }

  async pendingEvents(limit: number): Promise<AivaEvent[]> {
    return this.rows
      .filter((r) => !r.published)
      .slice(0, limit)
      .map((r) => r.event);
  }

  async markPublished(ids: readonly string[]): Promise<void> {
    this.marked.push([...ids]);
    for (const row of this.rows) if (ids.includes(row.event.id)) row.published = true;
  }

  pending(): string[] {
    return this.rows.filter((r) => !r.published).map((r) => r.event.id);
  }
}

/** A bus that rejects the next `failures` publishes, then passes through; records what it was asked. */
function flakyBus(inner: EventBus, failures: number): EventBus & { attempts: string[] } {
  let remaining = failures;
  const attempts: string[] = [];
  return {
    ...inner,
    attempts,
    async publish(event) {
      attempts.push(event.id);
      if (remaining > 0) {
        remaining--;
        throw new Error('nats: connection refused');
      }
      await inner.publish(event);
    },
  };
}

async function consume(bus: MemoryBus): Promise<string[]> {
  const delivered: string[] = [];
  await bus.subscribe('relay-test.consumer', 'aiva.users.user.created.v1', async (event) => {
    delivered.push(event.id);
  });
  return delivered;
}

describe('OutboxRelay', () => {
  const relays: OutboxRelay[] = [];
  const makeRelay = (options: ConstructorParameters<typeof OutboxRelay>[0]) => {
    const relay = new OutboxRelay(options);
    relays.push(relay);
    return relay;
  };

  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop()));
  });

  it('publishes pending events in outbox order and marks them published', async () => {
    const bus = createMemoryBus();
    const delivered = await consume(bus);
    const store = new FakeOutbox();
    const events = Array.from({ length: 7 }, () => userCreated());
    store.write(...events);
    const relay = makeRelay({ store, bus, batchSize: 3 });

    expect(await relay.flush()).toBe(7);
    await bus.drain();
    expect(delivered).toEqual(events.map((e) => e.id));
    expect(store.pending()).toEqual([]);
    expect(store.marked.map((batch) => batch.length)).toEqual([3, 3, 1]);
    expect(await relay.flush()).toBe(0);
  });

  it('keeps an event whose publish failed and delivers it exactly once on retry', async () => {
    const inner = createMemoryBus();
    const delivered = await consume(inner);
    const bus = flakyBus(inner, 1);
    const store = new FakeOutbox();
    const [first, second] = [userCreated(), userCreated()];
    store.write(first, second);
    const relay = makeRelay({ store, bus });

    await expect(relay.flush()).rejects.toThrow(/connection refused/);
    expect(store.pending()).toEqual([first.id, second.id]); // nothing marked before the bus accepted it
    expect(store.marked).toEqual([]);

    expect(await relay.flush()).toBe(2);
    await inner.drain();
    expect(delivered).toEqual([first.id, second.id]);
    expect(store.pending()).toEqual([]);
    expect(bus.attempts).toEqual([first.id, first.id, second.id]);
  });

  it('marks what was accepted before a failure in the middle of a batch', async () => {
    const inner = createMemoryBus();
    const delivered = await consume(inner);
    const store = new FakeOutbox();
    const events = [userCreated(), userCreated(), userCreated()];
    store.write(...events);
    let calls = 0;
    const bus: EventBus = {
      ...inner,
      async publish(event) {
        if (++calls === 2) throw new Error('timeout');
        await inner.publish(event);
      },
    };
    const relay = makeRelay({ store, bus });
    await expect(relay.flush()).rejects.toThrow('timeout');
    expect(store.pending()).toEqual([events[1]!.id, events[2]!.id]);
    expect(await relay.flush()).toBe(2);
    await inner.drain();
    expect(delivered).toEqual(events.map((e) => e.id));
  });

  it('retries on its own when started, and logs without event data', async () => {
    const inner = createMemoryBus();
    const delivered = await consume(inner);
    const bus = flakyBus(inner, 2);
    const store = new FakeOutbox();
    const event = userCreated();
    store.write(event);
    const lines: Record<string, unknown>[] = [];
    const logger = {
      warn: (fields: Record<string, unknown>) => lines.push(fields),
      info: () => undefined,
    } as unknown as NonNullable<ConstructorParameters<typeof OutboxRelay>[0]['logger']>;
    const relay = makeRelay({ store, bus, intervalMs: 20, logger });
    relay.start();

    await waitFor(() => store.pending().length === 0, 2_000, 'the event to be published');
    await inner.drain();
    expect(delivered).toEqual([event.id]);
    expect(bus.attempts).toEqual([event.id, event.id, event.id]);
    expect(lines).toHaveLength(2);
    expect(JSON.stringify(lines)).not.toContain(event.data.email);
    expect(lines[0]).toMatchObject({ eventId: event.id, err: 'nats: connection refused' });
  });

  it('publishes soon after notify() instead of waiting for the interval', async () => {
    const bus = createMemoryBus();
    const delivered = await consume(bus);
    const store = new FakeOutbox();
    const relay = makeRelay({ store, bus, intervalMs: 60_000 });
    relay.start();
    await waitFor(async () => (await relay.flush()) === 0, 1_000, 'the first tick');

    const event = userCreated();
    store.write(event);
    relay.notify();
    await waitFor(() => store.pending().length === 0, 1_000, 'publish after notify');
    await bus.drain();
    expect(delivered).toEqual([event.id]);
  });

  it('serialises concurrent flushes so each event is published once', async () => {
    const inner = createMemoryBus();
    const bus = flakyBus(inner, 0);
    const store = new FakeOutbox();
    const events = Array.from({ length: 5 }, () => userCreated());
    store.write(...events);
    const relay = makeRelay({ store, bus });
    const counts = await Promise.all([relay.flush(), relay.flush(), relay.flush()]);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(5);
    expect(bus.attempts).toEqual(events.map((e) => e.id));
  });

  it('flushes once more on stop and then stays stopped', async () => {
    const bus = createMemoryBus();
    const delivered = await consume(bus);
    const store = new FakeOutbox();
    const relay = makeRelay({ store, bus, intervalMs: 60_000 });
    relay.start();
    const event = userCreated();
    store.write(event);
    await relay.stop();
    expect(store.pending()).toEqual([]);
    await bus.drain();
    expect(delivered).toEqual([event.id]);

    store.write(userCreated());
    relay.notify();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(store.pending()).toHaveLength(1);
  });

  it('stop() survives a failing bus and leaves the events pending', async () => {
    const bus = flakyBus(createMemoryBus(), 100);
    const store = new FakeOutbox();
    store.write(userCreated());
    const relay = makeRelay({ store, bus, intervalMs: 60_000 });
    relay.start();
    await expect(relay.stop()).resolves.toBeUndefined();
    expect(store.pending()).toHaveLength(1);
  });
});
