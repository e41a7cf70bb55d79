import { bearer, graphql, waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEmailThrough } from '../helpers/sealed-mail.js';
import { type RunningSystem, startSystem } from './helpers/system.js';

// Two users instances behind the gateway, as `pnpm start --scale users=2` runs them: traffic spreads over both,
// and one can be killed while a load of queries runs without a single query failing.

const QUERY = '{ users(first: 20) { edges { node { id email displayName } } } }';
let system: RunningSystem;
let admin: Record<string, string>;

interface ProcessRow {
  slot: string;
  pid: number;
  state: string;
  restarts: number;
}

async function processes(): Promise<ProcessRow[]> {
  const status = (await (await fetch(`${system.orchestratorUrl}/v1/status`)).json()) as {
    processes: ProcessRow[];
  };
  return status.processes;
}

/** The gateway's requests per users instance, from the orchestrator's metrics (the gateways' reports). */
async function requestsPerInstance(): Promise<Map<string, number>> {
  const text = await (await fetch(`${system.orchestratorUrl}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const match of text.matchAll(/^aiva_instance_requests_total\{([^}]*)\} (\d+)/gm)) {
    const labels = match[1]!;
    if (!labels.includes('service="users"')) continue;
    const instance = /instance="([^"]+)"/.exec(labels)?.[1];
    if (instance) counts.set(instance, Number(match[2]));
  }
  return counts;
}

/** Sends the query from `workers` concurrent loops until `signal` aborts; counts answers and failures. */
async function load(workers: number, signal: AbortSignal) {
  const outcome = { ok: 0, failed: [] as string[] };
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (!signal.aborted) {
        try {
          const result = await graphql<{ users: { edges: unknown[] } }>(system.gatewayUrl, QUERY, {}, admin);
          if (result.status === 200 && !result.body.errors && result.body.data?.users.edges.length)
            outcome.ok++;
          else outcome.failed.push(JSON.stringify(result.body).slice(0, 300));
        } catch (error) {
          outcome.failed.push(String(error));
        }
      }
    }),
  );
  return outcome;
}

beforeAll(async () => {
  system = await startSystem({
    args: ['start', '--runtime', 'source', '--scale', 'users=2'],
    env: { AIVA_ADMIN_EMAILS: 'admin@example.test' },
  });
  const signedUp = await graphql<{ signUp: { accessToken: string; refreshToken: string } }>(
    system.gatewayUrl,
    'mutation { signUp(input: { email: "admin@example.test", password: "a long password", username: "admin", firstName: "A", lastName: "D" }) { accessToken refreshToken } }',
  );
  // An AIVA_ADMIN_EMAILS address is admin once it proved it owns the address.
  const verified = await verifyEmailThrough(
    system.gatewayUrl,
    system.dataDir,
    signedUp.body.data!.signUp,
    'admin@example.test',
  );
  admin = bearer(verified.accessToken);
}, 120_000);

afterAll(async () => {
  await system?.stop('SIGKILL');
});

describe('two users instances', { timeout: 60_000 }, () => {
  it('spreads requests over both', async () => {
    const table = await system.routing();
    expect(table.services.users?.instances).toHaveLength(2);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 2_000);
    const outcome = await load(4, controller.signal);
    expect(outcome.failed).toEqual([]);
    const counts = await waitFor(
      async () => {
        const perInstance = await requestsPerInstance();
        return perInstance.size === 2 && [...perInstance.values()].every((n) => n > 0) ? perInstance : null;
      },
      10_000,
      'the gateway to report traffic to both users instances',
    );
    const [a, b] = [...counts.values()];
    expect(Math.min(a!, b!) / Math.max(a!, b!)).toBeGreaterThan(0.25);
  });

  it('loses no query when one is SIGKILLed under load; the dead one leaves the table and comes back restarted', async () => {
    const before = await processes();
    const victim = before.find((p) => p.slot === 'users#2')!;
    const victimInstance = (await system.instances('users')).find((i) => i.slot === 'users#2')!;
    const controller = new AbortController();
    const running = load(8, controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 800));
    process.kill(victim.pid, 'SIGKILL');
    await waitFor(
      async () =>
        !(await system.routing()).services.users?.instances.some((i) => i.id === victimInstance.instanceId),
      5_000,
      'the killed instance to leave the routing table',
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    controller.abort();
    const outcome = await running;
    expect(outcome.failed).toEqual([]);
    expect(outcome.ok).toBeGreaterThan(20);

    // The supervisor restarts it: a new process, a new instance, routed again.
    const restarted = await waitFor(
      async () => {
        const row = (await processes()).find((p) => p.slot === 'users#2');
        return row && row.pid !== victim.pid && row.state === 'running' ? row : null;
      },
      30_000,
      'users#2 to be restarted',
    );
    expect(restarted.restarts).toBe(victim.restarts + 1);
    await waitFor(
      async () => (await system.routing()).services.users?.instances.length === 2,
      30_000,
      'two routable users instances again',
    );
  });
});

describe('an orchestrator killed with SIGKILL', { timeout: 60_000 }, () => {
  it('leaves no service behind: every child notices its supervisor is gone and stops', async () => {
    const pids = (await processes()).map((p) => p.pid).filter((pid) => pid > 0);
    expect(pids).toHaveLength(7);
    await system.stop('SIGKILL');
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitFor(() => pids.every((pid) => !alive(pid)), 20_000, 'every service process to exit');
  });
});
