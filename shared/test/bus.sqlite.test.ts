import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createEventBus } from '../src/events/create-bus.js';
import type { AivaEvent } from '../src/events/event.js';
import { createSqliteBus, type SqliteBus, type SqliteBusOptions } from '../src/events/sqlite.js';
import { openSqliteDatabase } from '../src/store/sqlite-driver.js';
import { busContract, userCreated, waitFor } from '../src/testing/index.js';
import { type Peer, startPeer } from './fixtures/peer.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const dir = mkdtempSync(join(tmpdir(), 'aiva-sqlite-bus-'));
let files = 0;
/** A fresh database file, so tests do not see each other's events. */
const freshFile = (label: string) => join(dir, `${label}-${++files}.db`);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

busContract('sqlite', async () => createSqliteBus({ file: join(dir, 'contract.db'), pollIntervalMs: 20 }));

const CREATED = 'aiva.users.user.created.v1';
const TIMEOUT_MS = 10_000;
const SETTLE_MS = 300;

describe('SQLite bus across processes', () => {
  const buses: SqliteBus[] = [];
  const peers: Peer[] = [];

  const openBus = (options: SqliteBusOptions) => {
    const bus = createSqliteBus(options);
    buses.push(bus);
    return bus;
  };
  const peerWithBus = async (options: SqliteBusOptions) => {
    const peer = await startPeer();
    peers.push(peer);
    await peer.call('open-bus', { options });
    return peer;
  };
  /** A handler that records the ids it completed. */
  const recorder = (delayMs = 0) => {
    const ids: string[] = [];
    const handler = async (event: AivaEvent) => {
      if (delayMs > 0) await sleep(delayMs);
      ids.push(event.id);
    };
    return { ids, handler };
  };

  afterEach(async () => {
    await Promise.allSettled(peers.splice(0).map((p) => p.stop()));
    await Promise.allSettled(buses.splice(0).map((b) => b.close()));
  });

  it('delivers events another process publishes to a durable here, each once and in order', async () => {
    const file = freshFile('publisher');
    const bus = openBus({ file, pollIntervalMs: 20 });
    const mine = recorder();
    await bus.subscribe('test.cross-publish', CREATED, mine.handler);
    const events = Array.from({ length: 20 }, () => userCreated());

    const publisher = await peerWithBus({ file, source: 'peer' });
    // Duplicates from the same and from another process are delivered once.
    await publisher.call('publish', { events: [...events, events[3], events[0]] });
    await bus.publish(events[7]!);

    await waitFor(() => mine.ids.length >= events.length, TIMEOUT_MS, 'all events');
    await sleep(SETTLE_MS);
    expect(mine.ids).toEqual(events.map((e) => e.id));
  });

  it('shares one consumer between two processes: every event handled once, none lost, both take turns', async () => {
    const file = freshFile('competing');
    const consumer = 'test.competing';
    const options = { file, pollIntervalMs: 20, turnMs: 40 };
    const bus = openBus(options);
    const here = recorder(4);
    await bus.subscribe(consumer, CREATED, here.handler);
    const other = await peerWithBus(options);
    await other.call('subscribe', { consumer, handlerMs: 4 });

    const events = Array.from({ length: 80 }, () => userCreated());
    for (const event of events) await bus.publish(event);
    const there = () => other.received(consumer);
    await waitFor(() => here.ids.length + there().length >= events.length, TIMEOUT_MS, 'all events');
    await sleep(SETTLE_MS);

    const all = [...here.ids, ...there()];
    expect(all).toHaveLength(events.length);
    expect(new Set(all).size).toBe(events.length);
    expect([...all].sort()).toEqual(events.map((e) => e.id).sort());
    // One event in flight per durable, in order: each process saw its share in publish order.
    const order = new Map(events.map((e, i) => [e.id, i]));
    for (const share of [here.ids, there()]) {
      const positions = share.map((id) => order.get(id) ?? -1);
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
    }
    expect(here.ids.length).toBeGreaterThan(0);
    expect(there().length).toBeGreaterThan(0);
  });

  it('redelivers the event a killed process was handling to a waiting subscriber (lease taken over)', async () => {
    const file = freshFile('crash');
    const consumer = 'test.crash';
    const leaseMs = 1_000;
    const doomed = await peerWithBus({ file, pollIntervalMs: 20, leaseMs });
    await doomed.call('subscribe', { consumer, hang: true });

    const bus = openBus({ file, pollIntervalMs: 20, leaseMs });
    const [first, second] = [userCreated(), userCreated()];
    await bus.publish(first);
    await bus.publish(second);
    await waitFor(
      () => doomed.notes.some((n) => n.note === 'handling' && n.id === first.id),
      TIMEOUT_MS,
      'the peer handling the first event',
    );
    const survivor = recorder();
    await bus.subscribe(consumer, CREATED, survivor.handler);
    // While the peer lives, its running handler keeps renewing the lease: nothing is taken over.
    await sleep(2 * leaseMs);
    expect(survivor.ids).toEqual([]);

    doomed.child.kill('SIGKILL');
    expect(await doomed.exited).toBe('SIGKILL');
    await waitFor(() => survivor.ids.length >= 2, TIMEOUT_MS, 'redelivery after the lease expired');
    await sleep(SETTLE_MS);
    expect(survivor.ids).toEqual([first.id, second.id]);
    expect(await bus.deadLetters(consumer)).toEqual([]);
  });

  it('keeps the consumer position in the file across closing and reopening the bus', async () => {
    const file = freshFile('reopen');
    const consumer = 'test.reopen';
    const [first, second] = [userCreated(), userCreated()];

    const before = createSqliteBus({ file, pollIntervalMs: 20 });
    const seenBefore = recorder();
    await before.subscribe(consumer, CREATED, seenBefore.handler);
    await before.publish(first);
    await waitFor(() => seenBefore.ids.length === 1, TIMEOUT_MS, 'the first event');
    await before.close();

    // Published by another process while no process of this consumer runs.
    const publisher = await peerWithBus({ file });
    await publisher.call('publish', { events: [second] });

    const after = openBus({ file, pollIntervalMs: 20 });
    const seenAfter = recorder();
    await after.subscribe(consumer, CREATED, seenAfter.handler);
    await waitFor(() => seenAfter.ids.length === 1, TIMEOUT_MS, 'the second event');
    await sleep(SETTLE_MS);
    expect(seenBefore.ids).toEqual([first.id]);
    expect(seenAfter.ids).toEqual([second.id]);
  });

  it('keeps the delivery count in the file: a restart does not reset maxDeliver', async () => {
    const file = freshFile('deliveries');
    const consumer = 'test.deliveries';
    const event = userCreated();
    const failing = (calls: { n: number }) => async () => {
      calls.n++;
      throw new Error(`broken (call ${calls.n})`);
    };

    const before = createSqliteBus({ file, pollIntervalMs: 20 });
    const callsBefore = { n: 0 };
    await before.subscribe(consumer, CREATED, failing(callsBefore), { maxDeliver: 3, backoffMs: [20, 300] });
    await before.publish(event);
    await waitFor(() => callsBefore.n === 2, TIMEOUT_MS, 'two failed deliveries');
    await before.close();

    const after = openBus({ file, pollIntervalMs: 20 });
    const callsAfter = { n: 0 };
    await after.subscribe(consumer, CREATED, failing(callsAfter), { maxDeliver: 3, backoffMs: [20] });
    const letters = await waitFor(
      async () => {
        const list = await after.deadLetters(consumer);
        return list.length > 0 ? list : null;
      },
      TIMEOUT_MS,
      'the dead letter',
    );
    expect(callsBefore.n).toBe(2);
    expect(callsAfter.n).toBe(1);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ consumer, event, deliveries: 3, error: 'broken (call 1)' });
  });

  it('dead-letters an event that fails validation on receipt, without calling the handler', async () => {
    const file = freshFile('invalid');
    const consumer = 'test.invalid';
    const bus = openBus({ file, pollIntervalMs: 20 });
    const seen = recorder();
    await bus.subscribe(consumer, 'aiva.users.user.deleted.v1', seen.handler);

    // A writer that skipped validation, straight into the shared file.
    const rogue = openSqliteDatabase(file);
    const id = userCreated().id;
    const body = {
      id,
      type: 'aiva.users.user.deleted.v1',
      occurredAt: new Date().toISOString(),
      source: 'rogue',
      data: { id: 'nope' },
    };
    rogue
      .prepare('INSERT INTO bus_events (id, type, payload, published_at) VALUES (?, ?, ?, ?)')
      .run(id, body.type, JSON.stringify(body), Date.now());
    rogue.close();

    const letters = await waitFor(
      async () => {
        const list = await bus.deadLetters(consumer);
        return list.length > 0 ? list : null;
      },
      TIMEOUT_MS,
      'the dead letter',
    );
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ consumer, deliveries: 1, event: body });
    expect(letters[0]?.error).toMatch(/aiva\.users\.user\.deleted\.v1.*data\.id/);
    expect(seen.ids).toEqual([]);
  });
});

describe('SQLite bus specifics', () => {
  it('prunes events and dead letters older than their retention', async () => {
    const file = freshFile('prune');
    const bus = createSqliteBus({ file, pollIntervalMs: 20, retentionMs: 100, deadLetterRetentionMs: 100 });
    const seen: string[] = [];
    await bus.subscribe('test.prune', CREATED, async (event) => {
      seen.push(event.id);
    });
    await bus.subscribe(
      'test.prune-dead',
      CREATED,
      async () => {
        throw new Error('always');
      },
      { maxDeliver: 1 },
    );
    const event = userCreated();
    await bus.publish(event);
    await waitFor(
      async () => seen.length === 1 && (await bus.deadLetters('test.prune-dead')).length === 1,
      TIMEOUT_MS,
      'delivery and dead letter',
    );
    await sleep(150);
    expect(await bus.prune()).toEqual({ events: 1, deadLetters: 1 });
    expect(await bus.deadLetters('test.prune-dead')).toEqual([]);
    // Gone from the log, the id is no longer a duplicate: deduplication lasts as long as the retention.
    await bus.publish(event);
    await waitFor(() => seen.length === 2, TIMEOUT_MS, 'the re-published event');
    await bus.close();
  });

  it('removes a consumer: its position and dead letters go, the next subscribe starts with new events', async () => {
    const file = freshFile('remove');
    const bus = createSqliteBus({ file, pollIntervalMs: 20 });
    const seen: string[] = [];
    const subscription = await bus.subscribe('test.remove', CREATED, async (event) => {
      seen.push(event.id);
    });
    await subscription.stop();
    const missed = userCreated();
    await bus.publish(missed);
    await bus.removeConsumer('test.remove');
    const fresh = userCreated();
    await bus.subscribe('test.remove', CREATED, async (event) => {
      seen.push(event.id);
    });
    await bus.publish(fresh);
    await waitFor(() => seen.length === 1, TIMEOUT_MS, 'the new event');
    await sleep(SETTLE_MS);
    expect(seen).toEqual([fresh.id]);
    await bus.close();
  });

  it('close() waits for an in-flight handler and acks it; later publishes are refused', async () => {
    const file = freshFile('close');
    const bus = createSqliteBus({ file, pollIntervalMs: 20 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = false;
    let finished = false;
    await bus.subscribe('test.close', CREATED, async () => {
      started = true;
      await gate;
      finished = true;
    });
    await bus.publish(userCreated());
    await waitFor(() => started, TIMEOUT_MS, 'handler start');
    const closing = bus.close();
    await sleep(50);
    expect(finished).toBe(false);
    release();
    await closing;
    expect(finished).toBe(true);
    await expect(bus.ping()).rejects.toThrow(/closed/);
    await expect(bus.publish(userCreated())).rejects.toThrow(/closed/);

    // The handled event was acked before the file closed: a new subscriber does not get it again.
    const reopened = createSqliteBus({ file, pollIntervalMs: 20 });
    const again: string[] = [];
    await reopened.subscribe('test.close', CREATED, async (event) => {
      again.push(event.id);
    });
    await sleep(SETTLE_MS);
    expect(again).toEqual([]);
    await reopened.close();
  });

  it('createEventBus with a file (and no NATS URL) gives a SQLite bus', async () => {
    const bus = await createEventBus({ source: 'users', file: freshFile('create') });
    expect(bus.kind).toBe('sqlite');
    await expect(bus.ping()).resolves.toBeUndefined();
    await bus.close();
  });
});
