import { type ChildProcess, spawn } from 'node:child_process';
import { tcpReachable, waitFor } from '@aiva/shared/testing';
import { freePort } from './system.js';

/** A private redis-server on a spare port, which a test can kill and start again. */
export interface TestRedisServer {
  url: string;
  port: number;
  /** Starts the server (again, on the same port) and waits until it accepts connections. */
  start(): Promise<void>;
  /** Kills the server (SIGKILL) and waits for it to exit: without persistence its data is gone. */
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /**
   * Keep the data in an append-only file in this directory (fsync every second), as production runs Redis: a
   * killed and restarted server comes back with its keys (sessions, rate-limit windows). Default: no persistence.
   */
  dir?: string;
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<TestRedisServer> {
  const port = await freePort();
  const persistence = options.dir
    ? ['--dir', options.dir, '--appendonly', 'yes', '--appendfsync', 'everysec']
    : ['--appendonly', 'no'];
  let child: ChildProcess | undefined;
  const endpoint = { host: '127.0.0.1', port };
  const server: TestRedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      child = spawn(
        'redis-server',
        ['--bind', '127.0.0.1', '--port', String(port), '--save', '', ...persistence],
        { stdio: 'ignore' },
      );
      await waitFor(() => tcpReachable(endpoint, 200), 10_000, `redis-server on ${port}`);
    },
    async stop() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
  await server.start();
  process.once('exit', () => child?.kill('SIGKILL'));
  return server;
}
