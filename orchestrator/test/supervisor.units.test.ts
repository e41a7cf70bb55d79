import { PassThrough } from 'node:stream';
import { registryToken } from '@aiva/shared';
import { describe, expect, it } from 'vitest';
import { exitWithParent } from '../../shared/src/server/supervised.js';
import {
  backoffDelay,
  childCommand,
  childEnvironment,
  crashLoopReason,
  DEFAULT_RESTART_POLICY,
  decideRestart,
  describeExit,
  LinePrefixer,
  linePrefix,
  restartPolicy,
  type ServiceDefinition,
} from '../src/supervisor/index.js';

const USERS: ServiceDefinition = {
  name: 'users',
  package: '@aiva/users',
  dir: 'subgraphs/users',
  entry: 'dist/main.js',
  source: 'src/main.ts',
  port: 3001,
  portVariable: 'USERS_PORT',
  kind: 'subgraph',
  watch: ['schema.graphql'],
  nodeOptions: [],
  env: {},
};

describe('restart policy', () => {
  it('has its defaults in one table', () => {
    expect(DEFAULT_RESTART_POLICY).toEqual({
      initialBackoffMs: 500,
      maxBackoffMs: 30_000,
      crashLoopLimit: 5,
      stableAfterMs: 10_000,
      stopTimeoutMs: 5_000,
    });
    expect(() => restartPolicy({ crashLoopLimit: 0 })).toThrow(/crashLoopLimit/);
    expect(() => restartPolicy({ stopTimeoutMs: -1 })).toThrow(/stopTimeoutMs/);
  });

  it('doubles the backoff from 500 ms up to 30 s', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8, 50].map((failures) =>
      backoffDelay(failures, DEFAULT_RESTART_POLICY),
    );
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });

  it('gives up at the crash-loop limit of consecutive failures, and forgets them after a stable run', () => {
    const policy = DEFAULT_RESTART_POLICY;
    let failures = 0;
    const decisions = [];
    for (let run = 0; run < 5; run++) {
      const decision = decideRestart(failures, 100, policy);
      decisions.push(decision);
      failures = decision.failures;
    }
    expect(decisions.map((d) => d.restart)).toEqual([true, true, true, true, false]);
    expect(decisions[3]).toEqual({ restart: true, failures: 4, delayMs: 4000 });
    // Four failures, then a run of stableAfterMs: this exit is the first failure again.
    expect(decideRestart(4, 10_000, policy)).toEqual({ restart: true, failures: 1, delayMs: 500 });
  });
});

describe('exit reasons', () => {
  it('names exit codes and signals', () => {
    expect(describeExit(78, null)).toBe('exit code 78 (configuration error)');
    expect(describeExit(1, null)).toBe('exit code 1');
    expect(describeExit(0, null)).toBe('exit code 0 (exited by itself)');
    expect(describeExit(null, 'SIGKILL')).toBe('killed by SIGKILL');
  });

  it('quotes the last stderr lines, or the last output lines when stderr was empty', () => {
    const reason = crashLoopReason({
      failures: 5,
      code: 78,
      signal: null,
      stderr: ['one', 'two', 'three', 'four', 'five', 'Invalid configuration:', '  - X: is required'],
      stdout: ['ignored'],
    });
    expect(reason).toBe(
      'crash loop: failed 5 times in a row, not restarting (last: exit code 78 (configuration error)); ' +
        'last stderr:\n  three\n  four\n  five\n  Invalid configuration:\n    - X: is required',
    );
    expect(
      crashLoopReason({ failures: 2, code: 1, signal: null, stderr: [], stdout: ['{"msg":"boom"}'] }),
    ).toContain('last output:\n  {"msg":"boom"}');
    expect(
      crashLoopReason({
        failures: 1,
        code: null,
        signal: null,
        stderr: [],
        stdout: [],
        error: 'spawn x ENOENT',
      }),
    ).toBe('crash loop: failed 1 times in a row, not restarting (last: cannot start: spawn x ENOENT)');
  });
});

describe('LinePrefixer', () => {
  function collect(): { writes: string[]; seen: string[]; prefixer: LinePrefixer } {
    const writes: string[] = [];
    const seen: string[] = [];
    const prefixer = new LinePrefixer(
      linePrefix('auth', 7),
      { write: (text: string) => writes.push(text) },
      (line) => seen.push(line),
    );
    return { writes, seen, prefixer };
  }

  it('pads the label and writes whole lines only, holding a partial line until its newline', () => {
    const { writes, seen, prefixer } = collect();
    prefixer.write(Buffer.from('hel'));
    expect(writes).toEqual([]);
    prefixer.write(Buffer.from('lo\nwor'));
    prefixer.write(Buffer.from('ld\r\nthird\n'));
    expect(writes).toEqual(['auth    │ hello\n', 'auth    │ world\nauth    │ third\n']);
    expect(seen).toEqual(['hello', 'world', 'third']);
  });

  it('keeps a character split across chunks whole, and flushes the rest at the end', () => {
    const { writes, prefixer } = collect();
    const bytes = Buffer.from('│ ok\nlast');
    prefixer.write(bytes.subarray(0, 1));
    prefixer.write(bytes.subarray(1));
    prefixer.flush();
    prefixer.flush();
    expect(writes).toEqual(['auth    │ │ ok\n', 'auth    │ last\n']);
  });

  it('writes an endless line in bounded pieces', () => {
    const { writes, prefixer } = collect();
    prefixer.write('x'.repeat(200_000));
    expect(writes.length).toBeGreaterThan(0);
    for (const write of writes) expect(write.endsWith('\n')).toBe(true);
  });
});

describe('child command lines', () => {
  const paths = { rootDir: '/repo', nodePath: 'node', tsxCli: '/repo/node_modules/tsx/dist/cli.mjs' };

  it('dist: node <dir>/<entry>; source: node with the source condition and tsx', () => {
    expect(childCommand(USERS, 'dist', paths)).toEqual({
      command: 'node',
      args: ['subgraphs/users/dist/main.js'],
      cwd: '/repo',
    });
    expect(childCommand(USERS, 'source', paths)).toEqual({
      command: 'node',
      args: ['--conditions=aiva-source', '--import', 'tsx', 'subgraphs/users/src/main.ts'],
      cwd: '/repo',
    });
  });

  it("puts a service's node options before its entry point", () => {
    const tuned = { ...USERS, nodeOptions: ['--max-old-space-size=160'] };
    expect(childCommand(tuned, 'dist', paths).args).toEqual([
      '--max-old-space-size=160',
      'subgraphs/users/dist/main.js',
    ]);
    expect(childCommand(tuned, 'source', paths).args[0]).toBe('--max-old-space-size=160');
  });

  it('watch: tsx watch over the source, including the watch files, leaving with its parent', () => {
    const { command, args } = childCommand(USERS, 'watch', paths);
    expect(command).toBe('node');
    expect(args[0]).toMatch(/^--import=data:text\/javascript,/);
    expect(decodeURIComponent(args[0]!)).toContain("process.stdin.on('end'");
    expect(args.slice(1)).toEqual([
      '/repo/node_modules/tsx/dist/cli.mjs',
      'watch',
      '--conditions=aiva-source',
      '--clear-screen=false',
      '--include',
      'subgraphs/users/schema.graphql',
      'subgraphs/users/src/main.ts',
    ]);
  });
});

describe('child environment', () => {
  it('hands out the service token, slot and port, and withholds the orchestrator secret', () => {
    const env = childEnvironment({
      base: { PATH: '/bin', REGISTRY_SECRET: 'secret', REGISTRY_TOKEN: 'someone-elses', USERS_PORT: '4001' },
      service: USERS,
      slot: 'users#2',
      port: 0,
      registrySecret: 'secret',
      orchestratorUrl: 'http://127.0.0.1:3100',
    });
    expect(env).toEqual({
      PATH: '/bin',
      REGISTRY_TOKEN: registryToken('secret', 'users'),
      ORCHESTRATOR_URL: 'http://127.0.0.1:3100',
      AIVA_INSTANCE_SLOT: 'users#2',
      AIVA_SUPERVISED: '1',
      USERS_PORT: '0',
    });
    const withoutSecret = childEnvironment({
      base: { REGISTRY_TOKEN: 'x' },
      service: USERS,
      slot: 'users#1',
      port: 3001,
    });
    expect(withoutSecret.REGISTRY_TOKEN).toBeUndefined();
  });

  it("gives the service's own defaults, which the environment overrides", () => {
    const tuned = { ...USERS, env: { MALLOC_ARENA_MAX: '2', LOG_LEVEL: 'warn' } };
    const env = childEnvironment({
      base: { LOG_LEVEL: 'debug' },
      service: tuned,
      slot: 'users#1',
      port: 3001,
    });
    expect(env).toMatchObject({ MALLOC_ARENA_MAX: '2', LOG_LEVEL: 'debug' });
  });
});

describe('exitWithParent', () => {
  it('calls back once when stdin ends, only under the supervisor', () => {
    const stdin = new PassThrough();
    let calls = 0;
    expect(exitWithParent(() => calls++, { AIVA_SUPERVISED: '1' }, stdin)).toBe(true);
    stdin.end();
    return new Promise<void>((resolve) => {
      stdin.once('close', () => {
        expect(calls).toBe(1);
        resolve();
      });
    });
  });

  it('does nothing outside the supervisor', () => {
    const stdin = new PassThrough();
    let calls = 0;
    expect(exitWithParent(() => calls++, {}, stdin)).toBe(false);
    stdin.end();
    expect(calls).toBe(0);
    expect(stdin.listenerCount('end')).toBe(0);
  });
});
