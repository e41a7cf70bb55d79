import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventBus } from '../src/events/bus.js';
import { EVENT_TYPES } from '../src/events/catalog.js';
import type { AivaEvent } from '../src/events/event.js';
import { createNatsBus, type NatsBus } from '../src/events/nats.js';
import { createSqliteBus } from '../src/events/sqlite.js';
import { describeInfra, userCreated, waitFor } from '../src/testing/index.js';

// `pnpm events` as a real process (Node + tsx, sources through the `source` condition, as the root script runs
// it) against a bus the test drives: a temp SQLite event log, and the NATS server.

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = fileURLToPath(new URL('../src/events/admin/cli.ts', import.meta.url));
const TIMEOUT_MS = 10_000;
const SETTLE_MS = 300;
const CREATED = 'aiva.users.user.created.v1';
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `args`; the bus settings come from `env` only (the test's own environment is left out). */
function runCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  const base = { ...process.env };
  for (const name of ['NATS_URL', 'DATA_DIR', 'EVENTS_DB_FILE']) delete base[name];
  const child = spawn(process.execPath, ['--conditions=aiva-source', '--import', 'tsx', CLI, ...args], {
    cwd: REPO_ROOT,
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function runJson<T>(args: string[], env: Record<string, string>): Promise<T> {
  const run = await runCli([...args, '--json'], env);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as T;
}

interface StatusJson {
  command: 'status';
  bus: string;
  streams: Array<{ name: string; messages: number }>;
  consumers: Array<{
    consumer: string;
    type: string;
    pending: number;
    ackPending: number;
    deadLetters: number;
  }>;
}
interface DeadJson {
  command: 'dead';
  deadLetters: Array<{ id: string; consumer: string; type: string; eventId: string; error: string }>;
}
interface ReplayJson {
  command: 'replay';
  replayed: Array<{ id: string; consumer: string; type: string; eventId: string }>;
}

/**
 * The CLI against one bus: `open` gives the bus the test subscribes and publishes with, and the environment
 * that makes the CLI find the same bus.
 */
function cliSuite(
  name: string,
  open: () => Promise<{
    bus: EventBus;
    env: Record<string, string>;
    cleanup(consumers: string[]): Promise<void>;
  }>,
): void {
  describe(`pnpm events against ${name}`, () => {
    const run = randomUUID().slice(0, 8);
    const consumers: string[] = [];
    const consumerName = (label: string) => {
      const consumer = `cli-${run}.${label}`;
      consumers.push(consumer);
      return consumer;
    };
    let bus: EventBus;
    let env: Record<string, string>;
    let cleanup: (consumers: string[]) => Promise<void>;

    beforeAll(async () => {
      ({ bus, env, cleanup } = await open());
    });
    afterAll(async () => {
      if (!bus) return;
      try {
        await cleanup(consumers);
      } finally {
        await bus.close();
      }
    });

    /** Subscribes a handler that fails until `fixed`, counting calls per event id. */
    async function flaky(consumer: string, maxDeliver: number) {
      const state = { fixed: false, calls: new Map<string, number>(), done: [] as string[] };
      await bus.subscribe(
        consumer,
        CREATED,
        async (event: AivaEvent) => {
          state.calls.set(event.id, (state.calls.get(event.id) ?? 0) + 1);
          if (!state.fixed) throw new Error(`broken handler for ${event.id}`);
          state.done.push(event.id);
        },
        { maxDeliver, backoffMs: [20] },
      );
      return state;
    }

    const deadOf = async (consumer: string) => (await runJson<DeadJson>(['dead', consumer], env)).deadLetters;

    it('lists streams and consumers with their lag and dead letters, as a table and as JSON', async () => {
      const broken = consumerName('status-broken');
      const idle = consumerName('status-idle');
      const state = await flaky(broken, 1);
      const stopped = await bus.subscribe(idle, CREATED, async () => {});
      await stopped.stop();
      const event = userCreated();
      await bus.publish(event);
      await waitFor(() => state.calls.get(event.id) === 1, TIMEOUT_MS, 'the failed delivery');
      await waitFor(async () => (await deadOf(broken)).length === 1, TIMEOUT_MS, 'the dead letter');

      const status = await runJson<StatusJson>([], env);
      expect(status.command).toBe('status');
      expect(status.bus).toMatch(new RegExp(`^${bus.kind} `));
      expect(status.streams.length).toBeGreaterThan(0);
      expect(status.streams[0]?.messages).toBeGreaterThan(0);
      const row = (consumer: string) =>
        status.consumers.find((c) => c.consumer === consumer && c.type === CREATED);
      expect(row(broken)).toMatchObject({ deadLetters: 1 });
      // The stopped consumer is behind by (at least) the event: not delivered, or handed back.
      expect((row(idle)?.pending ?? 0) + (row(idle)?.ackPending ?? 0)).toBeGreaterThanOrEqual(1);

      const table = await runCli([], env);
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/^Event bus: /);
      expect(table.stdout).toMatch(
        /CONSUMER\s+TYPE\s+PENDING\s+ACK PENDING\s+REDELIVERED\s+DEAD\s+LAST DELIVERED/,
      );
      expect(table.stdout).toContain(broken);
    });

    it('shows dead letters without event data, replays one to its consumer only, once', async () => {
      const consumer = consumerName('replay');
      const state = await flaky(consumer, 2);
      const bystander: string[] = [];
      await bus.subscribe(consumerName('replay-bystander'), CREATED, async (event) => {
        bystander.push(event.id);
      });
      const event = userCreated();
      await bus.publish(event);
      await waitFor(async () => (await deadOf(consumer)).length === 1, TIMEOUT_MS, 'the dead letter');

      const dead = await runCli(['dead', consumer], env);
      expect(dead.code).toBe(0);
      expect(dead.stdout).toMatch(/ID\s+CONSUMER\s+TYPE\s+EVENT\s+DELIVERIES\s+FAILED AT\s+ERROR/);
      expect(dead.stdout).toContain(event.id);
      expect(dead.stdout).toContain(`broken handler for ${event.id}`);
      const [letter] = await deadOf(consumer);
      expect(letter).toMatchObject({ consumer, type: CREATED, eventId: event.id });
      const everything = await runCli(['dead', '--json'], env);
      // Ids, type and error only: the event's data (here the email) never reaches the terminal.
      expect(everything.stdout).toContain(letter?.id);
      expect(everything.stdout).not.toContain(event.data.email);

      state.fixed = true;
      const replay = await runCli(['replay', letter!.id], env);
      expect(replay.stderr).toBe('');
      expect(replay.code).toBe(0);
      expect(replay.stdout).toContain(
        `Replayed dead letter ${letter!.id} (${CREATED} ${event.id}) to ${consumer}`,
      );
      await waitFor(() => state.done.includes(event.id), TIMEOUT_MS, 'the replayed delivery');
      await waitFor(async () => (await deadOf(consumer)).length === 0, TIMEOUT_MS, 'the dead letter to go');
      await sleep(SETTLE_MS);
      expect(state.calls.get(event.id)).toBe(3);
      expect(state.done).toEqual([event.id]);
      expect(bystander.filter((id) => id === event.id)).toHaveLength(1);

      const again = await runCli(['replay', letter!.id], env);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain(`No dead letter with id ${letter!.id}`);
    });

    it('replays every dead letter of a consumer with --all, and discards one', async () => {
      const consumer = consumerName('replay-all');
      const state = await flaky(consumer, 1);
      const events = [userCreated(), userCreated(), userCreated()];
      for (const event of events) await bus.publish(event);
      await waitFor(async () => (await deadOf(consumer)).length === 3, TIMEOUT_MS, 'three dead letters');
      const [first] = await deadOf(consumer);

      const discard = await runCli(['discard', first!.id], env);
      expect(discard.code).toBe(0);
      expect(discard.stdout).toContain(`Discarded dead letter ${first!.id}.`);
      expect((await deadOf(consumer)).map((d) => d.id)).not.toContain(first!.id);

      state.fixed = true;
      const replayed = await runJson<ReplayJson>(['replay', '--all', consumer], env);
      expect(replayed.replayed.map((r) => r.eventId)).toEqual([events[1]!.id, events[2]!.id]);
      await waitFor(() => state.done.length === 2, TIMEOUT_MS, 'the replayed deliveries');
      await waitFor(async () => (await deadOf(consumer)).length === 0, TIMEOUT_MS, 'no dead letters');
      await sleep(SETTLE_MS);
      expect(state.done).toEqual([events[1]!.id, events[2]!.id]);

      const nothing = await runCli(['replay', '--all', consumer], env);
      expect(nothing.code).toBe(0);
      expect(nothing.stdout).toContain('No dead letters to replay.');
    });

    it('fails with exit code 1 and a clear message on a wrong command line or an unknown id', async () => {
      const usage = await runCli(['replay'], env);
      expect(usage.code).toBe(1);
      expect(usage.stderr).toContain('replay: name exactly one dead letter id');
      expect(usage.stderr).toContain('usage: pnpm events');
      const unknown = await runCli(['rewind'], env);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('unknown command rewind');
      const missing = await runCli(['discard', '987654321', '--json'], env);
      expect(missing.code).toBe(1);
      expect(JSON.parse(missing.stdout)).toEqual({ error: 'No dead letter with id 987654321' });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'aiva-events-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

cliSuite('the embedded SQLite event log', async () => {
  const file = join(dir, 'events.sqlite');
  return {
    bus: createSqliteBus({ file, pollIntervalMs: 20 }),
    env: { EVENTS_DB_FILE: file },
    cleanup: async () => {},
  };
});

describe('pnpm events without a bus to look at', () => {
  it('refuses to create an event log that no service uses', async () => {
    const empty = join(dir, 'nothing-here');
    const run = await runCli([], { DATA_DIR: empty });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`No event log at ${join(empty, 'events.sqlite')}`);
  });

  it('says when NATS does not answer', async () => {
    const run = await runCli([], { NATS_URL: 'nats://127.0.0.1:1', NATS_CONNECT_TIMEOUT_MS: '300' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('NATS at nats://127.0.0.1:1 did not answer within 300 ms');
  });

  it('prints the event catalog without opening a bus', async () => {
    const run = await runCli(['catalog'], { NATS_URL: 'nats://127.0.0.1:1' });
    expect(run.code).toBe(0);
    for (const type of EVENT_TYPES) expect(run.stdout).toContain(`| \`${type}\` |`);
  });
});

// Needs NATS with JetStream (NATS_URL, default nats://127.0.0.1:4222). Consumer names are fresh per run and
// removed afterwards; the streams are the shared AIVA and AIVA_DLQ, as for the bus tests.
await describeInfra(
  'pnpm events on NATS',
  { envVar: 'NATS_URL', defaultUrl: 'nats://127.0.0.1:4222' },
  (url) => {
    cliSuite('NATS JetStream', async () => {
      const bus = await createNatsBus({ url, source: 'events-cli-test', pullExpiresMs: 1_000 });
      await bus.whenUp(TIMEOUT_MS);
      return {
        bus,
        env: { NATS_URL: url },
        cleanup: async (consumers) => {
          for (const consumer of consumers) await (bus as NatsBus).removeConsumer(consumer);
        },
      };
    });
  },
);
