import { afterEach, describe, expect, it } from 'vitest';
import type { EventBus } from '../src/events/bus.js';
import { BusUnavailableError } from '../src/events/bus-errors.js';
import type { AivaEvent } from '../src/events/event.js';
import { createMemoryBus, type MemoryBus } from '../src/events/memory.js';
import type { OutboxStore, QuarantinedEvent } from '../src/events/outbox.js';
import { OutboxRelay } from '../src/events/relay.js';
import { userCreated, waitFor } from '../src/testing/index.js';

/** An outbox in memory: events in write order, each marked published or not (quarantine and lease included). */
class FakeOutbox implements OutboxStore {
  readonly rows: { event: AivaEvent; published: boolean; attempts: number; quarantined: boolean }[] = [];
  readonly marked: string[][] = [];
  private lease: { owner: string; until: number } | null = null;

  write(...events: AivaEvent[]): void {
    for (const event of events) this.rows.push({ event, published: false, attempts: 0, quarantined: false });
  }

  async pendingEvents(limit: number): Promise<AivaEvent[]> {
    return this.rows
      .filter((r) => !r.published && !r.quarantined)
      .slice(0, limit)
      .map((r) => r.event);
  }

  async markPublished(ids: readonly string[]): Promise<void> {
    this.marked.push([...ids]);
    for (const row of this.rows) if (ids.includes(row.event.id)) row.published = true;
  }

  async recordFailure(id: string, failure: { error: string; permanent: boolean; maxAttempts: number }) {
    const row = this.rows.find((r) => r.event.id === id && !r.published && !r.quarantined);
    if (!row) return { attempts: 0, quarantined: false };
    row.attempts++;
    row.quarantined = failure.permanent || row.attempts >= failure.maxAttempts;
    return { attempts: row.attempts, quarantined: row.quarantined };
  }

  async quarantinedEvents(): Promise<QuarantinedEvent[]> {
    return this.rows
      .filter((r) => r.quarantined)
      .map((r) => ({ event: r.event, attempts: r.attempts, error: 'x', quarantinedAt: new Date() }));
  }

  async replayQuarantined(ids?: readonly string[]): Promise<number> {
    let n = 0;
    for (const row of this.rows) {
      if (row.quarantined && (!ids || ids.includes(row.event.id))) {
        row.quarantined = false;
        row.attempts = 0;
        n++;
      }
    }
    return n;
  }

  async discardQuarantined(ids: readonly string[]): Promise<number> {
    const before = this.rows.length;
    for (let i = this.rows.length - 1; i >= 0; i--) {
      const row = this.rows[i]!;
      if (row.quarantined && ids.includes(row.event.id)) this.rows.splice(i, 1);
    }
    return before - this.rows.length;
  }

  async outboxStats() {
    const open = this.rows.filter((r) => !r.published);
    return {
      pending: open.filter((r) => !r.quarantined).length,
      quarantined: open.filter((r) => r.quarantined).length,
    };
  }

  async acquireRelayLease(owner: string, leaseMs: number): Promise<boolean> {
    const now = Date.now();
    if (this.lease && this.lease.owner !== owner && this.lease.until > now) return false;
    this.lease = { owner, until: now + leaseMs };
    return true;
  }

  async releaseRelayLease(owner: string): Promise<void> {
    if (this.lease?.owner === owner) this.lease = null;
  }

  pending(): string[] {
    return this.rows.filter((r) => !r.published && !r.quarantined).map((r) => r.event.id);
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
  it('quarantines an event that fails validation at once and lets later events flow', async () => {
    const bus = createMemoryBus();
    const delivered = await consume(bus);
    const store = new FakeOutbox();
    const poison = { ...userCreated(), data: { id: 'not-a-uuid' } } as unknown as AivaEvent;
    const later = userCreated();
    store.write(poison, later);
    const quarantined: string[] = [];
    const relay = makeRelay({ store, bus, observer: { quarantined: (e) => quarantined.push(e.id) } });

    expect(await relay.flush()).toBe(1);
    await bus.drain();
    expect(delivered).toEqual([later.id]);
    expect(quarantined).toEqual([poison.id]);
    expect((await relay.quarantined()).map((q) => q.event.id)).toEqual([poison.id]);
    // Replayed, it fails validation again: straight back to quarantine, nothing published.
    expect(await relay.replayQuarantined()).toBe(1);
    expect(await relay.flush()).toBe(0);
    expect(await store.outboxStats()).toEqual({ pending: 0, quarantined: 1 });
    expect(await relay.discardQuarantined([poison.id])).toBe(1);
    expect(await store.outboxStats()).toEqual({ pending: 0, quarantined: 0 });
  });

  it('quarantines an event the bus keeps refusing after maxAttempts, and replays it later', async () => {
    const inner = createMemoryBus();
    const delivered = await consume(inner);
    const refused = userCreated();
    let refusing = true;
    const bus: EventBus = {
      ...inner,
      async publish(event) {
        if (refusing && event.id === refused.id) throw new Error('message too large');
        await inner.publish(event);
      },
    };
    const store = new FakeOutbox();
    const later = userCreated();
    store.write(refused, later);
    const relay = makeRelay({ store, bus, maxAttempts: 3 });

    await expect(relay.flush()).rejects.toThrow('message too large');
    await expect(relay.flush()).rejects.toThrow('message too large');
    expect(store.pending()).toEqual([refused.id, later.id]); // order held while attempts remain
    expect(await relay.flush()).toBe(1); // third failure: quarantined, the next event goes
    await inner.drain();
    expect(delivered).toEqual([later.id]);
    expect((await relay.quarantined())[0]).toMatchObject({ attempts: 3 });

    refusing = false;
    expect(await relay.replayQuarantined([refused.id])).toBe(1);
    expect(await relay.flush()).toBe(1);
    await inner.drain();
    expect(delivered).toEqual([later.id, refused.id]);
  });

  it('counts no attempt while the bus is unavailable (BusUnavailableError)', async () => {
    const inner = createMemoryBus();
    let down = true;
    const bus: EventBus = {
      ...inner,
      async publish(event) {
        if (down) throw new BusUnavailableError('NATS is disconnected; reconnecting');
        await inner.publish(event);
      },
    };
    const store = new FakeOutbox();
    const event = userCreated();
    store.write(event);
    const relay = makeRelay({ store, bus, maxAttempts: 1 });
    for (let i = 0; i < 5; i++) await expect(relay.flush()).rejects.toThrow(BusUnavailableError);
    expect(store.rows[0]).toMatchObject({ attempts: 0, quarantined: false });
    down = false;
    expect(await relay.flush()).toBe(1);
  });

  it('publishes only while holding the lease; another relay takes over once it is released', async () => {
    const bus = flakyBus(createMemoryBus(), 0);
    const store = new FakeOutbox();
    const leaders: boolean[] = [];
    const a = makeRelay({ store, bus, owner: 'a', observer: { leadership: (held) => leaders.push(held) } });
    const b = makeRelay({ store, bus, owner: 'b' });
    store.write(userCreated());
    expect(await a.flush()).toBe(1);
    store.write(userCreated());
    expect(await b.flush()).toBe(0); // a holds the lease
    expect(a.isLeader).toBe(true);
    expect(b.isLeader).toBe(false);
    await a.stop();
    expect(leaders).toEqual([true, false]);
    expect(await b.flush()).toBe(1);
    expect(bus.attempts).toHaveLength(2);
  });
});
