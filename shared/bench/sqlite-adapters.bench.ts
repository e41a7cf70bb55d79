import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteCache } from '../src/cache/sqlite.js';
import { type AivaEvent, createEvent } from '../src/events/event.js';
import { createSqliteBus } from '../src/events/sqlite.js';
import { startPeer } from '../test/fixtures/peer.js';

/**
 * The embedded SQLite adapters on this machine: publish throughput, delivery to another process (throughput
 * and end-to-end latency), cache get/set/increment throughput. One process each side, sequential calls:
 *   pnpm tsx --conditions=aiva-source shared/bench/sqlite-adapters.bench.ts
 * SQLITE_BENCH_EVENTS / SQLITE_BENCH_CACHE_OPS / SQLITE_BENCH_LATENCY_SAMPLES size the runs.
 */
const EVENTS = Number(process.env.SQLITE_BENCH_EVENTS ?? 5_000);
const CACHE_OPS = Number(process.env.SQLITE_BENCH_CACHE_OPS ?? 20_000);
const LATENCY_SAMPLES = Number(process.env.SQLITE_BENCH_LATENCY_SAMPLES ?? 200);
/** Gap between the latency probes, so each is delivered on its own rather than as part of a backlog. */
const LATENCY_GAP_MS = 15;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const nowMs = () => performance.timeOrigin + performance.now();

function userCreated(): AivaEvent<'aiva.users.user.created.v1'> {
  const id = randomUUID();
  return createEvent('aiva.users.user.created.v1', 'bench', {
    id,
    email: `u-${id}@example.com`,
    username: `u-${id.slice(0, 8)}`,
    firstName: 'Ada',
    lastName: 'Lovelace',
    displayName: null,
    createdAt: new Date().toISOString(),
  });
}

function percentile(samples: number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
}

const rate = (count: number, ms: number) => Math.round((count / ms) * 1000);
const fixed = (ms: number) => ms.toFixed(1);

async function waitUntil(probe: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Publishes EVENTS events with nobody subscribed: the cost of validating and appending to the log. */
async function publishOnly(dir: string): Promise<void> {
  const bus = createSqliteBus({ file: join(dir, 'publish.db') });
  try {
    const events = Array.from({ length: EVENTS }, () => userCreated());
    const started = nowMs();
    for (const event of events) await bus.publish(event);
    console.log(
      `bus   publish (no consumer, sequential)          ${rate(EVENTS, nowMs() - started)} events/s`,
    );
  } finally {
    await bus.close();
  }
}

/** Publishes EVENTS events from here while a durable in another process consumes them. */
async function publishAndDeliver(dir: string): Promise<void> {
  const file = join(dir, 'throughput.db');
  const bus = createSqliteBus({ file });
  const peer = await startPeer();
  try {
    await peer.call('open-bus', { options: { file } });
    await peer.call('subscribe', { consumer: 'bench.throughput' });
    const events = Array.from({ length: EVENTS }, () => userCreated());
    const started = nowMs();
    for (const event of events) await bus.publish(event);
    const published = nowMs();
    await waitUntil(() => peer.received('bench.throughput').length >= EVENTS, 'the deliveries');
    const delivered = nowMs();
    console.log(
      `bus   publish (another process consuming)        ${rate(EVENTS, published - started)} events/s`,
    );
    console.log(
      `bus   delivered to another process (backlog)     ${rate(EVENTS, delivered - started)} events/s`,
    );
  } finally {
    await peer.stop();
    await bus.close();
  }
}

/** One event at a time, published here and handled in another process: publish -> handler start. */
async function latency(dir: string, pollIntervalMs: number): Promise<void> {
  const file = join(dir, `latency-${pollIntervalMs}.db`);
  const bus = createSqliteBus({ file, pollIntervalMs });
  const peer = await startPeer();
  const consumer = 'bench.latency';
  try {
    await peer.call('open-bus', { options: { file, pollIntervalMs } });
    await peer.call('subscribe', { consumer });
    const sentAt = new Map<string, number>();
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const event = userCreated();
      sentAt.set(event.id, nowMs());
      await bus.publish(event);
      await sleep(LATENCY_GAP_MS);
    }
    await waitUntil(() => peer.received(consumer).length >= LATENCY_SAMPLES, 'the probes');
    const samples = peer.notes
      .filter((n) => n.note === 'handling' && n.consumer === consumer)
      .map((n) => (n.at ?? Number.NaN) - (sentAt.get(n.id ?? '') ?? Number.NaN));
    console.log(
      `bus   latency between processes (poll ${String(pollIntervalMs).padStart(2)} ms)   ` +
        `p50 ${fixed(percentile(samples, 0.5))} ms   p99 ${fixed(percentile(samples, 0.99))} ms`,
    );
  } finally {
    await peer.stop();
    await bus.close();
  }
}

async function cacheOps(dir: string): Promise<void> {
  const cache = createSqliteCache({ file: join(dir, 'cache.db') });
  try {
    const timed = async (label: string, op: (i: number) => Promise<unknown>) => {
      const started = nowMs();
      for (let i = 0; i < CACHE_OPS; i++) await op(i);
      console.log(`cache ${label.padEnd(42)} ${rate(CACHE_OPS, nowMs() - started)} ops/s`);
    };
    await cache.set('hot', JSON.stringify({ some: 'value', n: 42 }));
    await timed('get (hit)', () => cache.get('hot'));
    await timed('get (miss)', (i) => cache.get(`missing-${i}`));
    await timed('set (1,000 keys, 60 s TTL)', (i) => cache.set(`key-${i % 1_000}`, 'value', 60));
    await timed('increment (one counter)', () => cache.increment('counter', 60));
  } finally {
    await cache.close();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'aiva-sqlite-bench-'));
try {
  console.log(`node ${process.versions.node}, ${EVENTS} events, ${CACHE_OPS} cache ops per figure`);
  await publishOnly(dir);
  await publishAndDeliver(dir);
  await latency(dir, 50);
  await latency(dir, 10);
  await cacheOps(dir);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
