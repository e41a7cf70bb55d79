import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBus } from '../src/events/bus.js';
import type { AivaEvent } from '../src/events/event.js';
import { createMemoryBus } from '../src/events/memory.js';
import { OutboxRelay } from '../src/events/relay.js';
import type { SqliteDatabase } from '../src/store/sqlite-driver.js';
import { openMigratedSqlite } from '../src/store/sqlite-open.js';
import {
  createSqliteOutbox,
  SQLITE_OUTBOX_RELAY_MIGRATION,
  SQLITE_OUTBOX_SCHEMA,
  type SqliteOutbox,
} from '../src/store/sqlite-outbox.js';
import { userCreated, waitFor } from '../src/testing/index.js';
import { outboxContract } from './outbox.contract.js';

const MIGRATIONS = [SQLITE_OUTBOX_SCHEMA, SQLITE_OUTBOX_RELAY_MIGRATION];

function openOutbox(file: string): { db: SqliteDatabase; outbox: SqliteOutbox } {
  const db = openMigratedSqlite(file, { migrations: MIGRATIONS, label: 'outbox test' });
  return { db, outbox: createSqliteOutbox(db) };
}

outboxContract('SQLite', async () => {
  const { db, outbox } = openOutbox(':memory:');
  return {
    outbox,
    write: async (events) => {
      db.transaction(() => {
        for (const event of events) outbox.write(event);
      }).immediate();
    },
    close: async () => {
      db.close();
    },
  };
});

describe('SQLite outbox shared by several relays', () => {
  const dirs: string[] = [];
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** A bus that counts every publish by event id (duplicates included), over a memory bus. */
  function countingBus(): EventBus & { counts: Map<string, number> } {
    const inner = createMemoryBus();
    const counts = new Map<string, number>();
    return {
      ...inner,
      counts,
      async publish(event) {
        counts.set(event.id, (counts.get(event.id) ?? 0) + 1);
        // A little latency, so that two relays without a lease would overlap.
        await new Promise((resolve) => setTimeout(resolve, 1));
        await inner.publish(event);
      },
    };
  }

  /** Two connections to one fresh SQLite outbox file: two instances of a service sharing its store. */
  function twoConnectionsToOneFile() {
    const dir = mkdtempSync(join(tmpdir(), 'aiva-outbox-'));
    dirs.push(dir);
    const file = join(dir, 'store.sqlite');
    const one = openOutbox(file);
    const two = openOutbox(file);
    cleanups.push(
      () => one.db.close(),
      () => two.db.close(),
    );
    return [one, two] as const;
  }

  it('two relays on one SQLite file (two connections) publish each event exactly once', async () => {
    const [one, two] = twoConnectionsToOneFile();
    const bus = countingBus();
    const leadership: string[] = [];
    const relays = [one, two].map(
      ({ outbox }, i) =>
        new OutboxRelay({
          store: outbox,
          bus,
          intervalMs: 10,
          batchSize: 7,
          owner: `relay-${i}`,
          observer: { leadership: (held) => leadership.push(`${i}:${held}`) },
        }),
    );
    for (const relay of relays) relay.start();
    cleanups.push(async () => {
      await Promise.all(relays.map((r) => r.stop()));
    });

    // Both connections write (two instances taking writes); both relays are nudged after each write.
    const written: AivaEvent[] = [];
    for (let i = 0; i < 120; i++) {
      const event = userCreated();
      const { db, outbox } = i % 2 === 0 ? one : two;
      db.transaction(() => outbox.write(event)).immediate();
      written.push(event);
      for (const relay of relays) relay.notify();
      if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await waitFor(async () => (await one.outbox.outboxStats()).pending === 0, 10_000, 'the outbox to drain');

    expect(bus.counts.size).toBe(written.length);
    expect([...bus.counts.values()].every((n) => n === 1)).toBe(true);
    expect(relays.filter((r) => r.isLeader)).toHaveLength(1);
    expect(leadership).toHaveLength(1); // one took the lease and kept it
  });

  it('a relay whose holder died takes over once the lease expired', async () => {
    const [one, two] = twoConnectionsToOneFile();
    const bus = countingBus();
    // The "dead" instance: it took the lease and never renews or releases it.
    expect(await one.outbox.acquireRelayLease('dead-instance', 300)).toBe(true);
    const event = userCreated();
    one.outbox.write(event);
    const relay = new OutboxRelay({ store: two.outbox, bus, intervalMs: 20, leaseMs: 300 });
    relay.start();
    cleanups.push(() => relay.stop());
    expect(await relay.flush()).toBe(0);
    await waitFor(() => bus.counts.get(event.id) === 1, 5_000, 'the takeover');
    expect(relay.isLeader).toBe(true);
  });

  it('quarantines a hand-written poison row (not an event) and keeps publishing later events', async () => {
    const { db, outbox } = openOutbox(':memory:');
    cleanups.push(() => db.close());
    const bus = countingBus();
    const [first, second] = [randomUUID(), randomUUID()];
    db.prepare('INSERT INTO outbox (id, type, payload, created_at) VALUES (?, ?, ?, ?)').run(
      first,
      'aiva.users.user.created.v1',
      '"not an envelope"',
      new Date().toISOString(),
    );
    db.prepare('INSERT INTO outbox (id, type, payload, created_at) VALUES (?, ?, ?, ?)').run(
      second,
      'aiva.users.user.created.v1',
      JSON.stringify({ ...userCreated(), id: second, data: { id: 'nope' } }),
      new Date().toISOString(),
    );
    const later = userCreated();
    outbox.write(later);
    const relay = new OutboxRelay({ store: outbox, bus });
    cleanups.push(() => relay.stop());

    expect(await relay.flush()).toBe(1);
    expect([...bus.counts.keys()]).toEqual([later.id]);
    const held = await outbox.quarantinedEvents();
    expect(held.map((q) => q.event.id)).toEqual([first, second]);
    expect(held[0]?.error).toMatch(/Invalid event envelope/);
    expect(held[1]?.error).toMatch(/Invalid event aiva\.users\.user\.created\.v1: data\.id/);
    expect(await outbox.outboxStats()).toEqual({ pending: 0, quarantined: 2 });
  });
});
