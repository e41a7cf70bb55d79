import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { waitFor } from '@aiva/shared/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProcessStatusView } from '../src/supervisor/index.js';
import { EventLog, FIXTURES_DIR, freePort, isAlive, killAll } from './fixtures/supervisor/harness.js';

// The supervisor runs in a process of its own here (fixtures/supervisor/supervise.ts), which the test SIGKILLs:
// no chance to stop anything. The fixture services must still go, through `exitWithParent` (and, in watch mode,
// the watcher's own hook), because their stdin pipe from the supervisor closed.
const LONG = 60_000;
const WAIT = 30_000;

let events: EventLog | undefined;
let supervising: ChildProcess | undefined;

afterEach(() => {
  if (supervising?.pid && supervising.exitCode === null) supervising.kill('SIGKILL');
  supervising = undefined;
  killAll(events?.entries().map((entry) => entry.pid) ?? []);
  events?.remove();
  events = undefined;
});

/** Starts supervise.ts and resolves with the status it prints once its services started. */
function startSupervising(mode: 'source' | 'watch', env: NodeJS.ProcessEnv): Promise<ProcessStatusView[]> {
  const child = spawn(
    process.execPath,
    ['--conditions=aiva-source', '--import', 'tsx', join(FIXTURES_DIR, 'supervise.ts'), mode, 'alpha'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  supervising = child;
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n').find((l) => l.startsWith('supervising '));
      if (line) resolve(JSON.parse(line.slice('supervising '.length)) as ProcessStatusView[]);
    });
    child.once('exit', (code) =>
      reject(new Error(`supervise.ts exited (${code}) before starting:\n${stderr}`)),
    );
  });
}

describe('supervised processes and a killed supervisor', () => {
  it.each(['source', 'watch'] as const)(
    'a %s-mode child exits when the supervising process is SIGKILLed',
    async (mode) => {
      events = new EventLog();
      const env = {
        ...process.env,
        HOST: '127.0.0.1',
        FIXTURE_EVENTS_FILE: events.file,
        ALPHA_PORT: String(await freePort()),
      };
      const [slot] = await startSupervising(mode, env);
      expect(slot).toMatchObject({ slot: 'alpha#1', state: 'running' });
      const [service] = events.of('started');
      const pids = [slot!.pid!, service!.pid];
      for (const pid of pids) expect(isAlive(pid)).toBe(true);

      supervising!.kill('SIGKILL');

      await waitFor(() => pids.every((pid) => !isAlive(pid)), WAIT, `the ${mode}-mode processes to exit`);
      expect(events.of('parent-gone').map((entry) => entry.pid)).toEqual([service!.pid]);
    },
    LONG,
  );
});
