import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/** The repository root: the entry point runs from there, as `pnpm dev` would run it. */
const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const ENTRY = 'subgraphs/users/src/main.ts';

/** Variables of this test process that would change how the service starts; each test sets its own. */
const SCRUBBED = [
  'USERS_PORT',
  'USERS_DB_FILE',
  'MONGODB_URL',
  'NATS_URL',
  'REDIS_URL',
  'DATA_DIR',
  'HOST',
  'LOG_LEVEL',
  'NODE_ENV',
  'NODE_OPTIONS',
];

function childEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of SCRUBBED) delete env[name];
  for (const name of Object.keys(env)) if (name.startsWith('VITEST') || name === 'TEST') delete env[name];
  return { ...env, ...vars };
}

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];

function runUsers(vars: Record<string, string>): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=aiva-source', ENTRY], {
    cwd: ROOT,
    env: childEnv(vars),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    child.once('exit', (code, signal) => done({ code, signal }));
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Resolves with the URL of the pino `users listening` line, or rejects if the process exits first. */
function listeningUrl(run: Run): Promise<string> {
  return new Promise((done, fail) => {
    const scan = () => {
      for (const line of run.stdout().split('\n')) {
        if (!line.startsWith('{')) continue;
        let entry: { msg?: string; url?: string };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          continue;
        }
        if (entry.msg === 'users listening' && entry.url) {
          run.child.stdout?.off('data', scan);
          done(entry.url);
          return;
        }
      }
    };
    run.child.stdout?.on('data', scan);
    run.exited.then(({ code, signal }) =>
      fail(new Error(`users exited (${code ?? signal}) before listening:\n${run.stderr()}${run.stdout()}`)),
    );
    scan();
  });
}

const tempDirs: string[] = [];

afterAll(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('users entry point (real process)', () => {
  it.each([
    ['USERS_PORT', 'notaport'],
    ['MONGODB_URL', 'http://x'],
  ])('exits with code 78 naming %s when it is invalid', async (name, value) => {
    const run = runUsers({ [name]: value, LOG_LEVEL: 'silent' });
    const { code } = await withTimeout(run.exited, 15_000, `users with ${name}=${value}`);
    expect(code).toBe(78);
    expect(run.stderr()).toContain('Invalid configuration');
    expect(run.stderr()).toMatch(new RegExp(`^  - ${name}: `, 'm'));
    // The rejected value is not echoed back (it could be a secret).
    expect(run.stderr()).not.toContain(value);
    expect(run.stdout()).not.toContain('listening');
  });

  it('starts on an ephemeral port, serves, and stops cleanly on SIGTERM', async () => {
    // NODE_ENV=test keeps Apollo Server's own signal handlers out of the way (see the known bug below).
    const { run, dataDir } = await startUsers({ NODE_ENV: 'test' });
    const url = await withTimeout(listeningUrl(run), 15_000, 'users listening');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(url).not.toMatch(/:0$/);

    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok', service: 'users' });

    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { store: 'up', events: 'up' } });

    const graphql = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ _service { sdl } }' }),
    });
    expect(graphql.status).toBe(200);
    const body = (await graphql.json()) as { data?: { _service: { sdl: string } } };
    expect(body.data?._service.sdl).toContain('type User');

    await expectCleanStop(run, dataDir);
  });

  it('stops cleanly on SIGTERM with the default NODE_ENV', async () => {
    const { run, dataDir } = await startUsers({});
    await withTimeout(listeningUrl(run), 15_000, 'users listening');
    await expectCleanStop(run, dataDir);
  });
});

async function startUsers(vars: Record<string, string>): Promise<{ run: Run; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'aiva-users-main-'));
  tempDirs.push(dataDir);
  const run = runUsers({ USERS_PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info', ...vars });
  return { run, dataDir };
}

async function expectCleanStop(run: Run, dataDir: string): Promise<void> {
  expect(run.child.kill('SIGTERM')).toBe(true);
  const startedStopping = Date.now();
  const { code, signal } = await withTimeout(run.exited, 10_000, 'users exit after SIGTERM');
  expect({ code, signal }).toEqual({ code: 0, signal: null });
  expect(Date.now() - startedStopping).toBeLessThan(10_000);
  expect(run.stdout()).toContain('users stopped');
  expect(existsSync(join(dataDir, 'users.sqlite'))).toBe(true);
  // No WAL/SHM files left behind: the store was closed, not abandoned.
  expect(readdirSync(dataDir).filter((file) => /-(wal|shm)$/.test(file))).toEqual([]);
}
