// Processes that start at one instant, for tests of what separate processes do truly at once (two workers
// claiming from one SQLite file, say), which one event loop cannot show. The racer is a script run by tsx: it
// calls `awaitStartSignal()`, does its part, and prints its result with `reportResult`. The test starts racers
// with `startRacer` and lets them go together with `race`.
// This module imports no test runner, so racer processes can import it (`@aiva/shared/testing/racers`).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

const READY = 'ready\n';

/** In the racer: says it is ready, reads the start time (epoch ms) on stdin and returns at that instant. */
export async function awaitStartSignal(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  process.stdout.write(READY);
  const [line] = (await once(lines, 'line')) as [string];
  lines.close();
  const startAt = Number(line);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - Date.now() - 5)));
  while (Date.now() < startAt) {
    // the last few milliseconds spun, for a close start
  }
}

/** In the racer: its result, the one JSON line the test reads. */
export function reportResult(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export interface Racer<T> {
  /** Lets it start at `startAt` (epoch ms). */
  go(startAt: number): void;
  /** What it reported; rejects when it exited with another code than 0 or wrote to stderr (with what it wrote). */
  result(): Promise<T>;
}

export interface RacerOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs `script` (TypeScript, through tsx, resolving workspace packages to their sources) with `args`, and
 * resolves once it is ready to start.
 */
export async function startRacer<T>(
  script: string,
  args: string[],
  options: RacerOptions,
): Promise<Racer<T>> {
  const child = spawn(process.execPath, ['--conditions=aiva-source', '--import', 'tsx', script, ...args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: 'pipe',
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((done, fail) => {
    child.on('error', fail);
    child.on('close', done);
  });
  await new Promise<void>((ready, fail) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.startsWith(READY)) ready();
    });
    exited.then(() => fail(new Error(`racer ${script} exited before it was ready: ${stderr}`)), fail);
  });
  return {
    go: (startAt) => child.stdin.end(`${startAt}\n`),
    async result() {
      const code = await exited;
      if (code !== 0 || stderr !== '') {
        throw new Error(`racer ${script} exited with ${code}${stderr ? `, writing: ${stderr}` : ''}`);
      }
      return JSON.parse(stdout.slice(READY.length)) as T;
    },
  };
}

/** Lets every racer go at one instant, `leadMs` from now, and gathers their results in their order. */
export function race<T>(racers: Racer<T>[], leadMs = 100): Promise<T[]> {
  const startAt = Date.now() + leadMs;
  for (const racer of racers) racer.go(startAt);
  return Promise.all(racers.map((racer) => racer.result()));
}
