import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSystem, startSystem } from './helpers/system.js';

// A service that crashes at start five times is not restarted a sixth time, and the orchestrator says why —
// in its log and on its status — while the other services keep running. (Five starts from source with the
// restart backoff in between take most of a minute.)

let system: RunningSystem;
const scratch = mkdtempSync(join(tmpdir(), 'aiva-crash-'));

interface ProcessRow {
  slot: string;
  state: string;
  restarts: number;
  reason: string | null;
  lastExit: { code: number | null } | null;
}

beforeAll(async () => {
  // users cannot open its store: the store's directory would be a regular file.
  const blocker = join(scratch, 'not-a-directory');
  writeFileSync(blocker, '');
  // (The gateway is not ready without users: the supervisor goes on after its wait, so do not wait for "up".)
  system = await startSystem({ env: { USERS_DB_FILE: join(blocker, 'users.sqlite') }, waitUp: false });
}, 120_000);

afterAll(async () => {
  await system?.stop('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});

describe('a service that crashes at start', { timeout: 180_000 }, () => {
  it('is given up on after five attempts, with the reason on the status and in the log', async () => {
    const users = await waitFor(
      async () => {
        const response = await fetch(`${system.orchestratorUrl}/v1/status`).catch(() => null);
        if (!response) return null; // not listening yet
        const status = (await response.json()) as { processes: ProcessRow[] };
        return status.processes.find((p) => p.slot === 'users#1' && p.state === 'crash-loop');
      },
      150_000,
      'users#1 to be reported in a crash loop',
    );
    expect(users.lastExit?.code).toBe(1);
    expect(users.reason).toMatch(/failed 5 times in a row, not restarting \(last: exit code 1\)/);
    expect(users.reason).toMatch(/not-a-directory/);
    expect(system.process.lines.filter((line) => line.includes('"users#1 started"'))).toHaveLength(5);
    expect(
      system.process.lines.some((line) => line.includes('"level":50') && line.includes('users#1 crash loop')),
    ).toBe(true);

    // No sixth attempt, and the others run on.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(system.process.lines.filter((line) => line.includes('"users#1 started"'))).toHaveLength(5);
    const services = await waitFor(
      async () => {
        const list = (await system.instances()).map((i) => i.service).sort();
        return list.length === 5 ? list : null;
      },
      30_000,
      'the gateway to register',
    );
    expect(services).toEqual(['ai', 'auth', 'gateway', 'media', 'notifications']);
  });
});
