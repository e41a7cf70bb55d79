import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tcpReachable, waitFor } from '@aiva/shared/testing';
import { freePort } from './system.js';

/** A private nats-server with JetStream on a spare port, which a test can stop and start again. */
export interface TestNatsServer {
  url: string;
  port: number;
  start(): Promise<void>;
  /** Kills the server (SIGKILL) and waits until its port is closed. */
  stop(): Promise<void>;
}

export async function startNatsServer(): Promise<TestNatsServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'aiva-nats-'));
  let child: ChildProcess | undefined;
  const endpoint = { host: '127.0.0.1', port };
  const server: TestNatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    async start() {
      child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], {
        stdio: 'ignore',
      });
      await waitFor(() => tcpReachable(endpoint, 200), 10_000, `nats-server on ${port}`);
    },
    async stop() {
      if (!child || child.exitCode !== null) return;
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
  await server.start();
  process.once('exit', () => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return server;
}
