import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, type RunningSystem, startSystem } from '../system/helpers/system.js';
import {
  BENCH_ADMIN,
  benchAdminToken,
  CONNECTIONS,
  DURATION_S,
  type Figures,
  load,
  printTable,
  seedUsers,
  startProcess,
} from './bench-kit.js';

/**
 * The process model in figures (`pnpm bench:orchestrator`), every service its own process as `pnpm start` runs
 * them (built files), the load generator on the same machine:
 * - `users(first: 20)` through AIVA's gateway with one and with two users instances, and the same query through a
 *   plain @apollo/gateway in a process of its own on the same supergraph and the same users instance, in
 *   alternating rounds;
 * - failed queries while a users instance is SIGKILLed under load (target 0), and the time from the kill to the
 *   instance leaving the routing table;
 * - total memory (RSS) of `pnpm start` under load;
 * - in `pnpm dev users`: the time from an edit of subgraphs/users/schema.graphql to the new field being
 *   queryable through the gateway (the file is restored afterwards).
 */
const QUERY = { query: '{ users(first: 20) { edges { node { id email displayName } } } }' };
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const SEED = Number(process.env.SEED_USERS ?? 200);
const dataDir = mkdtempSync(join(tmpdir(), 'aiva-bench-orchestrator-'));
const env = {
  AIVA_ADMIN_EMAILS: BENCH_ADMIN.email,
  SIGNIN_MAX_FAILURES_PER_IP: '1000000',
  AUTH_REQUESTS_PER_ADDRESS: '1000000',
};

console.log('building (tsc -b)…');
execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b'], {
  cwd: ROOT,
  stdio: 'inherit',
});

const processesOf = async (system: RunningSystem) =>
  (
    (await (await fetch(`${system.orchestratorUrl}/v1/status`)).json()) as {
      processes: Array<{ slot: string; pid: number | null }>;
    }
  ).processes;

/** RSS of the orchestrator and every service process, in MB (what `pnpm start` holds). */
async function totalRssMb(system: RunningSystem): Promise<number> {
  const pids = [system.process.child.pid, ...(await processesOf(system)).map((p) => p.pid)];
  let kb = 0;
  for (const pid of pids) {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    kb += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }
  return kb / 1024;
}

/**
 * Sends QUERY from `workers` loops until `stopAt`; counts answers that are not a 200 with data and no errors.
 */
async function loadCountingFailures(url: string, token: string, workers: number, signal: AbortSignal) {
  let ok = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (!signal.aborted) {
        try {
          const response = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
            body: JSON.stringify(QUERY),
          });
          const body = (await response.json()) as { data?: unknown; errors?: unknown };
          if (response.status === 200 && body.data && !body.errors) ok++;
          else failed++;
        } catch {
          failed++;
        }
      }
    }),
  );
  return { ok, failed };
}

const rows: Figures[] = [];
const summary: string[] = [];
let system = await startSystem({ dataDir, env, args: ['start'], built: true });
let plain: { url: string; stop: () => void } | undefined;
try {
  // Seed, once: the data directory is kept for the later runs.
  const token = await benchAdminToken(system.gatewayUrl, dataDir);
  await seedUsers(system.gatewayUrl, token, SEED);
  const headers = { authorization: `Bearer ${token}` };
  plain = await startProcess(
    [join(ROOT, 'tests/bench/plain-gateway.ts')],
    {
      SUBGRAPH_USERS_URL: `http://127.0.0.1:${system.ports.users}/graphql`,
      SUBGRAPH_AUTH_URL: `http://127.0.0.1:${system.ports.auth}/graphql`,
    },
    { script: true },
  );
  await load('warm-up', system.gatewayUrl, QUERY, { durationS: 2, headers });
  await load('warm-up', plain.url, QUERY, { durationS: 2, headers });
  const aiva1: Figures[] = [];
  const plainRuns: Figures[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    aiva1.push(
      await load(`AIVA gateway, 1 users instance (round ${round})`, system.gatewayUrl, QUERY, { headers }),
    );
    plainRuns.push(await load(`plain @apollo/gateway (round ${round})`, plain.url, QUERY, { headers }));
  }
  rows.push(...aiva1, ...plainRuns);
  const rss = await totalRssMb(system);
  plain.stop();
  plain = undefined;
  await system.stop('SIGINT');

  system = await startSystem({ dataDir, env, args: ['start', '--scale', 'users=2'], built: true });
  await load('warm-up', system.gatewayUrl, QUERY, { durationS: 2, headers });
  const aiva2: Figures[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    aiva2.push(
      await load(`AIVA gateway, 2 users instances (round ${round})`, system.gatewayUrl, QUERY, { headers }),
    );
  }
  rows.push(...aiva2);

  // Kill one users instance under load.
  const victim = (await processesOf(system)).find((p) => p.slot === 'users#2');
  const victimInstance = (await system.instances('users')).find((i) => i.slot === 'users#2');
  const controller = new AbortController();
  const running = loadCountingFailures(system.gatewayUrl, token, CONNECTIONS, controller.signal);
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const killedAt = performance.now();
  process.kill(victim!.pid!, 'SIGKILL');
  let removalMs = Number.NaN;
  while (performance.now() - killedAt < 10_000) {
    const table = await system.routing();
    if (!table.services.users?.instances.some((i) => i.id === victimInstance?.instanceId)) {
      removalMs = performance.now() - killedAt;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  controller.abort();
  const killRun = await running;
  await system.stop('SIGINT');

  // pnpm dev users: an SDL edit to a queryable field.
  system = await startSystem({ dataDir, env, args: ['dev', 'users'] });
  const schemaFile = join(ROOT, 'subgraphs/users/schema.graphql');
  const original = readFileSync(schemaFile, 'utf8');
  const edited = original.replace(
    'type Query {',
    'type Query {\n  "Added by the orchestrator benchmark."\n  benchProbe: String',
  );
  let editMs = Number.NaN;
  try {
    const editedAt = performance.now();
    writeFileSync(schemaFile, edited);
    while (performance.now() - editedAt < 60_000) {
      const response = await fetch(system.gatewayUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"query":"{ benchProbe }"}',
      });
      const body = (await response.json()) as { data?: unknown; errors?: unknown };
      if (body.data && !body.errors) {
        editMs = performance.now() - editedAt;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    writeFileSync(schemaFile, original);
  }
  await system.stop('SIGINT');

  const mean = (figures: Figures[]) =>
    figures.reduce((sum, f) => sum + f.requestsPerSecond, 0) / figures.length;
  printTable(
    `query: ${QUERY.query} (admin token, ${SEED} users; ${CONNECTIONS} connections, ${DURATION_S} s a round)`,
    rows,
  );
  summary.push(
    `AIVA (1 users instance) / plain @apollo/gateway throughput: ${(mean(aiva1) / mean(plainRuns)).toFixed(2)}`,
    `AIVA (2 users instances) / plain @apollo/gateway throughput: ${(mean(aiva2) / mean(plainRuns)).toFixed(2)}`,
    `instance SIGKILLed under load (${CONNECTIONS} concurrent clients, ~5 s): ${killRun.failed} failed of ${killRun.ok + killRun.failed} queries`,
    `kill → removal from the routing table: ${removalMs.toFixed(0)} ms`,
    `total RSS of pnpm start (orchestrator + auth + users + gateway), after load: ${rss.toFixed(0)} MB`,
    `pnpm dev users: schema edit → new field queryable through the gateway: ${(editMs / 1000).toFixed(2)} s`,
  );
  console.log(`\n${summary.join('\n')}`);
} finally {
  plain?.stop();
  await system.stop('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
}
