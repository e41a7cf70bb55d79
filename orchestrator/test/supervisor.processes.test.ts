import { registryToken } from '@aiva/shared';
import { waitFor } from '@aiva/shared/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createSupervisor,
  type ProcessExitInfo,
  type ProcessStatusView,
  type ServiceManifest,
  type Supervisor,
  type SupervisorOptions,
} from '../src/supervisor/index.js';
import {
  EventLog,
  fixtureManifest,
  freePort,
  isAlive,
  killAll,
  listeningWaiter,
  OutputSink,
  recordingLogger,
} from './fixtures/supervisor/harness.js';

// Real child processes: the fixture services in test/fixtures/supervisor, run by the supervisor as it runs the
// real ones. Timeouts are generous; nothing here measures speed.
const LONG = 60_000;
const WAIT = 30_000;
const SECRET = 'test-registry-secret-of-at-least-32-characters';

let events: EventLog;
let supervisor: Supervisor | undefined;

beforeEach(() => {
  events = new EventLog();
});

afterEach(async () => {
  await supervisor?.stop();
  supervisor = undefined;
  killAll(events.entries().map((entry) => entry.pid));
  events.remove();
});

interface Supervised {
  supervisor: Supervisor;
  output: OutputSink;
  exits: Array<{ slot: string; info: ProcessExitInfo }>;
  logs: () => Array<Record<string, unknown>>;
  env: NodeJS.ProcessEnv;
}

/** A supervisor over fixture services on free ports, from source, with a short backoff. */
async function supervise(
  manifest: ServiceManifest,
  options: Partial<SupervisorOptions> = {},
  env: NodeJS.ProcessEnv = {},
): Promise<Supervised> {
  const baseEnv: NodeJS.ProcessEnv = {
    ...process.env,
    HOST: '127.0.0.1',
    FIXTURE_EVENTS_FILE: events.file,
    // The orchestrator's own secret: it must never reach a child.
    REGISTRY_SECRET: SECRET,
    ...env,
  };
  for (const service of manifest.services) baseEnv[service.portVariable] = String(await freePort());
  const output = new OutputSink();
  const { logger, records } = recordingLogger();
  const exits: Supervised['exits'] = [];
  supervisor = createSupervisor({
    manifest,
    runtime: 'source',
    env: baseEnv,
    output,
    logger,
    onExit: (slot, info) => exits.push({ slot, info }),
    ...options,
    restart: { initialBackoffMs: 50, ...options.restart },
  });
  return { supervisor, output, exits, logs: records, env: baseEnv };
}

function slotStatus(view: ProcessStatusView[], slot: string): ProcessStatusView {
  const found = view.find((entry) => entry.slot === slot);
  if (!found) throw new Error(`no slot ${slot} in ${JSON.stringify(view)}`);
  return found;
}

async function health(port: number): Promise<Record<string, unknown>> {
  const response = await fetch(`http://127.0.0.1:${port}/health`);
  return (await response.json()) as Record<string, unknown>;
}

describe('supervisor output', () => {
  it(
    'prefixes every line of stdout and stderr with the slot, padded, and never writes half a line',
    async () => {
      const { supervisor, output } = await supervise(fixtureManifest('alpha', 'web'));
      await supervisor.start();
      await waitFor(
        () => output.lines().filter((line) => line.endsWith('second line')).length === 2,
        WAIT,
        'both services printing',
      );
      await supervisor.stop();

      // Every write is whole lines: a piece of a line is held until its newline (or the end of the process).
      for (const write of output.writes) expect(write.endsWith('\n')).toBe(true);
      const lines = output.lines();
      for (const line of lines) expect(line).toMatch(/^(alpha|web {2}) │ /);
      expect(lines).toContain('alpha │ partial line done');
      expect(lines).toContain('web   │ partial line done');
      expect(lines).toContain('alpha │ a line on stderr');
      expect(lines).toContain('alpha │ stopping');
      // Written without a newline just before exiting: flushed as a line of its own.
      expect(lines).toContain('alpha │ bye');
      expect(lines).toContain('web   │ bye');
    },
    LONG,
  );
});

describe('supervisor scale', () => {
  it(
    'runs N instances: distinct processes and ports, the first on the service port, each with its slot and token',
    async () => {
      const { supervisor, output, env } = await supervise(fixtureManifest('alpha'), {
        scale: { alpha: 3 },
        // Instances 2 and 3 listen on ports the OS picked: ready once they say where (as they would register).
        waitReady: listeningWaiter(events),
        registrySecret: SECRET,
        orchestratorUrl: 'http://127.0.0.1:3999',
      });
      expect(supervisor.slots.map((slot) => [slot.slot, slot.label, slot.port])).toEqual([
        ['alpha#1', 'alpha#1', Number(env.ALPHA_PORT)],
        ['alpha#2', 'alpha#2', 0],
        ['alpha#3', 'alpha#3', 0],
      ]);
      const view = await supervisor.start();

      expect(view.map((entry) => entry.state)).toEqual(['running', 'running', 'running']);
      const pids = view.map((entry) => entry.pid);
      expect(new Set(pids).size).toBe(3);
      const listening = await waitFor(
        () => (events.of('listening').length === 3 ? events.of('listening') : undefined),
        WAIT,
        'three instances listening',
      );
      const portOf = new Map(listening.map((entry) => [entry.slot, Number(entry.event.split(' ')[1])]));
      expect(new Set(portOf.values()).size).toBe(3);
      expect(portOf.get('alpha#1')).toBe(Number(env.ALPHA_PORT));

      for (const slot of ['alpha#1', 'alpha#2', 'alpha#3']) {
        const seen = await health(portOf.get(slot)!);
        expect(seen).toMatchObject({
          slot,
          pid: slotStatus(view, slot).pid,
          supervised: '1',
          registryToken: registryToken(SECRET, 'alpha'),
          registrySecret: null,
          orchestratorUrl: 'http://127.0.0.1:3999',
        });
      }
      for (const slot of ['alpha#1', 'alpha#2', 'alpha#3']) {
        await waitFor(() => output.lines().includes(`${slot} │ second line`), WAIT, `${slot} output`);
        expect(output.lines()).toContain(`${slot} │ partial line done`);
      }
    },
    LONG,
  );
});

describe('supervisor start order', () => {
  it(
    'starts a service only once the previous one is ready (waitReady), each with an abort signal',
    async () => {
      let releaseAlpha: () => void = () => {};
      const alphaReady = new Promise<void>((resolve) => {
        releaseAlpha = resolve;
      });
      const asked: string[] = [];
      const { supervisor } = await supervise(fixtureManifest('alpha', 'beta'), {
        waitReady: async (slot, signal) => {
          expect(signal).toBeInstanceOf(AbortSignal);
          asked.push(slot);
          if (slot === 'alpha#1') await alphaReady;
        },
      });
      const started = supervisor.start();
      await waitFor(() => events.of('listening').some((e) => e.slot === 'alpha#1'), WAIT, 'alpha listening');
      expect(slotStatus(supervisor.status(), 'alpha#1').state).toBe('starting');
      // alpha is up but not ready: beta must not have been started.
      expect(asked).toEqual(['alpha#1']);
      expect(events.entries().filter((e) => e.slot === 'beta#1')).toEqual([]);
      expect(slotStatus(supervisor.status(), 'beta#1').pid).toBeNull();

      releaseAlpha();
      const view = await started;
      expect(asked).toEqual(['alpha#1', 'beta#1']);
      expect(view.map((entry) => [entry.slot, entry.state])).toEqual([
        ['alpha#1', 'running'],
        ['beta#1', 'running'],
      ]);
    },
    LONG,
  );
});

describe('supervisor stop', () => {
  it(
    'stops the gateway first, then the other services in reverse start order, each exit reported',
    async () => {
      // web (the gateway) in the middle of the start order: it still stops first.
      const { alpha, web, beta } = Object.fromEntries(
        fixtureManifest('alpha', 'web', 'beta').services.map((service) => [service.name, service]),
      );
      const manifest = { ...fixtureManifest('alpha'), services: [alpha!, web!, beta!] };
      const { supervisor, exits } = await supervise(manifest, {
        scale: { beta: 2 },
        waitReady: listeningWaiter(events),
      });
      const view = await supervisor.start();
      expect(view.every((entry) => entry.state === 'running')).toBe(true);

      await supervisor.stop();

      const order = events.of('SIGTERM').map((entry) => entry.slot);
      expect(order).toHaveLength(4);
      expect(order[0]).toBe('web#1');
      expect(order.slice(1, 3).sort()).toEqual(['beta#1', 'beta#2']);
      expect(order[3]).toBe('alpha#1');
      for (const entry of view) expect(isAlive(entry.pid!)).toBe(false);
      expect(supervisor.status().map((entry) => entry.state)).toEqual([
        'stopped',
        'stopped',
        'stopped',
        'stopped',
      ]);
      expect(supervisor.status().map((entry) => entry.lastExit?.code)).toEqual([0, 0, 0, 0]);
      expect(exits.map((exit) => exit.slot).sort()).toEqual(['alpha#1', 'beta#1', 'beta#2', 'web#1']);
      for (const { info } of exits) expect(info).toMatchObject({ expected: true, willRestart: false });
    },
    LONG,
  );

  it(
    'sends SIGKILL to a process that ignores SIGTERM once the stop timeout passed',
    async () => {
      const { supervisor, logs } = await supervise(fixtureManifest('stubborn'), {
        restart: { stopTimeoutMs: 500 },
      });
      const [running] = await supervisor.start();
      expect(running?.state).toBe('running');

      await supervisor.stop();

      expect(events.of('SIGTERM ignored').map((entry) => entry.pid)).toEqual([running!.pid]);
      expect(isAlive(running!.pid!)).toBe(false);
      const [stopped] = supervisor.status();
      expect(stopped).toMatchObject({ state: 'stopped', pid: null });
      expect(stopped?.lastExit).toMatchObject({ code: null, signal: 'SIGKILL' });
      expect(logs().some((record) => String(record.msg).includes('sending SIGKILL'))).toBe(true);
    },
    LONG,
  );
});

describe('supervisor restarts', () => {
  it(
    'restarts a process killed with SIGKILL under a new pid, and tells onExit at once',
    async () => {
      const { supervisor, exits } = await supervise(fixtureManifest('alpha'));
      const [first] = await supervisor.start();
      const firstPid = first!.pid!;

      process.kill(firstPid, 'SIGKILL');

      const restarted = await waitFor(
        () => {
          const [now] = supervisor.status();
          return now?.state === 'running' && now.pid !== firstPid ? now : undefined;
        },
        WAIT,
        'alpha running again under a new pid',
      );
      expect(restarted.restarts).toBe(1);
      expect(restarted.lastExit).toMatchObject({ code: null, signal: 'SIGKILL' });
      expect(isAlive(firstPid)).toBe(false);
      expect(exits).toHaveLength(1);
      expect(exits[0]).toMatchObject({
        slot: 'alpha#1',
        info: { pid: firstPid, signal: 'SIGKILL', expected: false, willRestart: true },
      });
      expect(events.of('started').map((entry) => entry.pid)).toEqual([firstPid, restarted.pid]);
    },
    LONG,
  );

  it(
    'leaves a service that crashes at start five times down, says why, and still starts the next services',
    async () => {
      const { supervisor, exits, logs } = await supervise(fixtureManifest('broken', 'alpha'));

      const view = await supervisor.start();

      const broken = slotStatus(view, 'broken#1');
      expect(broken).toMatchObject({ state: 'crash-loop', pid: null, restarts: 4 });
      expect(broken.lastExit).toMatchObject({ code: 78, signal: null });
      expect(broken.reason).toContain('failed 5 times in a row');
      expect(broken.reason).toContain('exit code 78 (configuration error)');
      expect(broken.reason).toContain('BROKEN_SETTING: is required');
      expect(slotStatus(view, 'alpha#1').state).toBe('running');
      const loud = logs().find((record) => record.level === 50 && String(record.msg).includes('crash loop'));
      expect(loud?.msg).toContain('BROKEN_SETTING: is required');
      const brokenExits = exits.filter((exit) => exit.slot === 'broken#1');
      expect(brokenExits.map((exit) => exit.info.willRestart)).toEqual([true, true, true, true, false]);

      // Longer than any backoff so far: still no sixth start.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(events.of('started').filter((entry) => entry.slot === 'broken#1')).toHaveLength(5);
      expect(slotStatus(supervisor.status(), 'broken#1').state).toBe('crash-loop');
      expect(slotStatus(supervisor.status(), 'alpha#1').state).toBe('running');
    },
    LONG,
  );

  it(
    'runs the built entry with plain node in dist mode',
    async () => {
      const { supervisor } = await supervise(fixtureManifest('broken'), {
        runtime: 'dist',
        restart: { crashLoopLimit: 1 },
      });
      expect(supervisor.slots[0]?.mode).toBe('dist');

      const [broken] = await supervisor.start();

      expect(broken).toMatchObject({ state: 'crash-loop', restarts: 0, lastExit: { code: 78 } });
      expect(broken?.reason).toContain('exit code 78 (configuration error)');
      expect(events.of('started')).toHaveLength(1);
    },
    LONG,
  );

  it(
    'counts crashes soon after a start towards the crash loop; a crash loop leaves the other services running',
    async () => {
      const { supervisor } = await supervise(
        fixtureManifest('alpha', 'flaky'),
        { restart: { crashLoopLimit: 2, stableAfterMs: 60_000 } },
        { FLAKY_CRASH_AFTER_MS: '300' },
      );
      await supervisor.start();

      const flaky = await waitFor(
        () => {
          const now = slotStatus(supervisor.status(), 'flaky#1');
          return now.state === 'crash-loop' ? now : undefined;
        },
        WAIT,
        'flaky in a crash loop',
      );
      expect(flaky.restarts).toBe(1);
      expect(flaky.reason).toContain('exit code 3');
      expect(flaky.reason).toContain('flaky crashed on purpose');
      expect(slotStatus(supervisor.status(), 'alpha#1').state).toBe('running');
    },
    LONG,
  );

  it(
    'starts counting failures again after a process ran stableAfterMs',
    async () => {
      const { supervisor } = await supervise(
        fixtureManifest('flaky'),
        { restart: { crashLoopLimit: 2, stableAfterMs: 200 } },
        { FLAKY_CRASH_AFTER_MS: '400' },
      );
      await supervisor.start();

      // Each run lasts longer than stableAfterMs, so no run adds to the previous ones' failures: more restarts
      // than the crash-loop limit, and no crash loop.
      await waitFor(() => events.of('crashing').length >= 4, WAIT, 'four crashes');
      const [flaky] = supervisor.status();
      expect(flaky?.state).not.toBe('crash-loop');
      expect(flaky?.restarts).toBeGreaterThanOrEqual(3);
      expect(flaky?.reason).toBeNull();
    },
    LONG,
  );
});

describe('supervisor watch mode', () => {
  it(
    'runs a service under tsx watch and stops it through tsx with a single SIGTERM',
    async () => {
      const { supervisor, env } = await supervise(fixtureManifest('alpha'), { watch: ['alpha'] });
      expect(supervisor.slots[0]?.mode).toBe('watch');
      const [watcher] = await supervisor.start();
      expect(watcher?.state).toBe('running');
      // The slot's process is tsx's watcher; the service runs under it.
      const [service] = events.of('started');
      expect(service?.pid).not.toBe(watcher?.pid);
      expect(await health(Number(env.ALPHA_PORT))).toMatchObject({ slot: 'alpha#1', pid: service?.pid });

      await supervisor.stop();

      expect(events.of('SIGTERM').map((entry) => entry.pid)).toEqual([service?.pid]);
      expect(isAlive(watcher!.pid!)).toBe(false);
      expect(isAlive(service!.pid)).toBe(false);
      expect(supervisor.status()[0]?.lastExit?.code).toBe(0);
    },
    LONG,
  );
});
