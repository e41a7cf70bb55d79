import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadServiceManifest } from '@aiva/orchestrator';
import { registryToken } from '@aiva/shared';
import { freePort, ROOT, type RunningSystem, startSystem } from '../system/helpers/system.js';
import {
  BENCH_ADMIN,
  benchAdminToken,
  CONNECTIONS,
  DURATION_S,
  type Figures,
  graphqlOnce,
  load,
  seedUsers,
  startProcess,
} from './bench-kit.js';
import { type CpuProfile, summarizeCpuProfile } from './cpu-profile.js';

/**
 * AIVA's gateway side by side with a plain @apollo/gateway and Hive Gateway (`pnpm bench:gateway`): the same
 * supergraph over the same running AIVA subgraphs (users and auth of a `pnpm start`, built files), each gateway
 * in a process of its own, the same autocannon load on each in alternating rounds (AIVA, plain, Hive, repeated),
 * for four queries with an admin token:
 * - a single-subgraph list (`users(first: 20)`),
 * - a federated query (auth's `me` with the profile fields of users),
 * - an entity-heavy one (20 users, each with auth's `roles` and `emailVerified`: one `_entities` fetch of 20),
 * - a mix of distinct operations (four shapes, a different `first` or `id` in each request), which no in-flight
 *   deduplication can merge.
 * It prints requests/s, p50, p99, failed requests (a body with `errors` counts) and each gateway's RSS after its
 * round, then the AIVA/plain and AIVA/Hive throughput ratios.
 *
 * `BENCH_PROFILE=1` (or `pnpm bench:gateway:profile`) instead runs AIVA's gateway under `node --cpu-prof` with the
 * `users(first: 20)` load for BENCH_PROFILE_DURATION seconds (default 15) and prints a summary of the profile: the
 * functions with the most self time and the packages with the largest inclusive share.
 *
 * The three are fed one copy of the committed supergraph whose routing URLs are the running subgraphs'. AIVA's
 * gateway runs as `pnpm start` runs it (`node <its nodeOptions> gateway/dist/main.js`, registered with the orchestrator, which
 * routes it to the same instances); rate limits are off (RATE_LIMIT_MAX=0) as the others have none.
 */
const PROFILE = process.env.BENCH_PROFILE === '1' || process.argv.includes('--profile');
const PROFILE_S = Number(process.env.BENCH_PROFILE_DURATION ?? 15);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const SEED = Number(process.env.SEED_USERS ?? 100);
const REGISTRY_SECRET = randomBytes(32).toString('base64url');

interface Body {
  query: string;
  variables?: Record<string, unknown>;
}

interface BenchQuery {
  name: string;
  body: Body;
  /** A distinct body for every request (the mix). */
  nextBody?: () => string;
}

const USERS_LIST: BenchQuery = {
  name: 'single subgraph: users(first: 20)',
  body: { query: '{ users(first: 20) { edges { node { id username displayName } } } }' },
};
const FEDERATED: BenchQuery = {
  name: "federated: auth's me + users' profile",
  body: {
    query: '{ me { id roles emailVerified email username firstName lastName displayName createdAt } }',
  },
};
const ENTITIES: BenchQuery = {
  name: 'entity-heavy: users(first: 20) with auth fields',
  body: { query: '{ users(first: 20) { edges { node { id displayName roles emailVerified } } } }' },
};

/** Four operation shapes, each request another `first` (1-50) or user `id`: no two in flight are the same. */
function mixOf(ids: string[]): BenchQuery {
  const shapes = [
    (n: number) => ({
      query: 'query List($n: Int) { users(first: $n) { edges { node { id username displayName } } } }',
      variables: { n: 1 + (n % 50) },
    }),
    (n: number) => ({
      query: 'query Entities($n: Int) { users(first: $n) { edges { node { id roles emailVerified } } } }',
      variables: { n: 1 + (n % 50) },
    }),
    (n: number) => ({
      query: 'query One($id: ID!) { user(id: $id) { id email firstName lastName roles } }',
      variables: { id: ids[n % ids.length] },
    }),
    (n: number) => ({
      query:
        'query Page($n: Int) { users(first: $n) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id createdAt } } } }',
      variables: { n: 1 + (n % 50) },
    }),
  ];
  let count = 0;
  return {
    name: 'mix: 4 shapes, distinct variables per request',
    body: shapes[0]!(0),
    nextBody: () => {
      const n = count++;
      return JSON.stringify(shapes[n % shapes.length]!(Math.floor(n / shapes.length)));
    },
  };
}

interface GatewayProcess {
  name: string;
  url: string;
  pid: number;
  stop(): void;
}

/** Resident memory of a process, in MB. */
function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/**
 * AIVA's gateway in a process of its own, as the orchestrator's supervisor starts it in `pnpm start` (built file,
 * the orchestrator's environment, its registry credential), with extra `node` flags (`--cpu-prof`). Its output
 * is read and dropped; the last lines are kept for the error when it does not come up.
 */
async function startAivaGateway(
  system: RunningSystem,
  supergraphPath: string,
  nodeFlags: string[] = [],
): Promise<GatewayProcess & { child: ChildProcess; exited: Promise<number | null>; tail: string[] }> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...system.env,
    REGISTRY_TOKEN: registryToken(REGISTRY_SECRET, 'gateway'),
    ORCHESTRATOR_URL: system.orchestratorUrl,
    GATEWAY_PORT: String(port),
    SUPERGRAPH_PATH: supergraphPath,
  };
  delete env.REGISTRY_SECRET;
  // The Node options `pnpm start` gives the gateway (orchestrator/services.yaml), then the benchmark's own.
  const manifest = loadServiceManifest().services.find((service) => service.name === 'gateway');
  const child = spawn(
    process.execPath,
    [...(manifest?.nodeOptions ?? []), ...nodeFlags, 'gateway/dist/main.js'],
    {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const tail: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    name: 'AIVA',
    url: `http://127.0.0.1:${port}/graphql`,
    pid: child.pid!,
    child,
    exited,
    tail,
    stop: () => child.kill('SIGINT'),
  };
}

/** Waits until `url` answers `query` without errors (schema loaded, subgraphs reached). */
async function waitServing(gateway: GatewayProcess, token: string, tail: string[] = []): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      await graphqlOnce(gateway.url, '{ users(first: 1) { edges { node { id roles } } } }', {}, token);
      return;
    } catch (error) {
      last = error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  throw new Error(`${gateway.name} gateway does not serve: ${String(last)}\n${tail.join('\n')}`);
}

/** The committed supergraph with the running subgraphs' URLs as its routing URLs (`@join__graph(url:)`). */
function supergraphFor(system: RunningSystem, dir: string): string {
  const ports: Record<string, number> = {
    users: system.ports.users,
    auth: system.ports.auth,
    notifications: system.ports.notifications,
  };
  const sdl = readFileSync(join(ROOT, 'supergraph.graphql'), 'utf8').replace(
    /@join__graph\(name: "([^"]+)", url: "[^"]*"\)/g,
    (match, name: string) =>
      ports[name] ? `@join__graph(name: "${name}", url: "http://127.0.0.1:${ports[name]}/graphql")` : match,
  );
  const file = join(dir, 'supergraph.graphql');
  writeFileSync(file, sdl);
  return file;
}

interface Run extends Figures {
  gateway: string;
  round: number;
  rssMb: number;
}

const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;

function printQueryTable(query: BenchQuery, runs: Run[]): void {
  console.log(`\n### ${query.name}\n`);
  console.log('| gateway | round | requests/s | p50 (ms) | p99 (ms) | errors | RSS after (MB) |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of runs) {
    console.log(
      `| ${r.gateway} | ${r.round} | ${r.requestsPerSecond.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.errors} | ${r.rssMb.toFixed(0)} |`,
    );
  }
}

function printSummary(results: Array<{ query: BenchQuery; runs: Run[] }>): void {
  console.log(
    `\n### Summary (mean of ${ROUNDS} rounds; ${CONNECTIONS} connections, ${DURATION_S} s a round, Node ${process.version})\n`,
  );
  console.log(
    '| query | AIVA req/s | plain req/s | Hive req/s | AIVA/plain | AIVA/Hive | p99 AIVA / plain / Hive (ms) | max RSS AIVA / plain / Hive (MB) | errors AIVA / plain / Hive |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const { query, runs } of results) {
    const of = (gateway: string) => runs.filter((r) => r.gateway === gateway);
    const rps = (gateway: string) => mean(of(gateway).map((r) => r.requestsPerSecond));
    const p99 = (gateway: string) => mean(of(gateway).map((r) => r.p99)).toFixed(0);
    const rss = (gateway: string) => Math.max(...of(gateway).map((r) => r.rssMb)).toFixed(0);
    const errors = (gateway: string) => of(gateway).reduce((sum, r) => sum + r.errors, 0);
    const [aiva, plain, hive] = [rps('AIVA'), rps('plain'), rps('Hive')];
    console.log(
      `| ${query.name} | ${aiva.toFixed(0)} | ${plain.toFixed(0)} | ${hive.toFixed(0)} | ${(aiva / plain).toFixed(2)} | ${(aiva / hive).toFixed(2)} | ${p99('AIVA')} / ${p99('plain')} / ${p99('Hive')} | ${rss('AIVA')} / ${rss('plain')} / ${rss('Hive')} | ${errors('AIVA')} / ${errors('plain')} / ${errors('Hive')} |`,
    );
  }
}

async function bench(system: RunningSystem, supergraphPath: string, token: string): Promise<void> {
  const headers = { authorization: `Bearer ${token}` };
  const gateways: GatewayProcess[] = [];
  try {
    const aiva = await startAivaGateway(system, supergraphPath);
    gateways.push(aiva);
    await waitServing(aiva, token, aiva.tail);
    for (const [name, script] of [
      ['plain', 'plain-gateway.ts'],
      ['Hive', 'hive-gateway.ts'],
    ] as const) {
      const started = await startProcess(
        [join(ROOT, 'tests/bench', script)],
        { SUPERGRAPH_PATH: supergraphPath },
        { script: true },
      );
      const gateway = { name, ...started };
      gateways.push(gateway);
      await waitServing(gateway, token);
    }

    const { users } = await graphqlOnce<{ users: { edges: Array<{ node: { id: string } }> } }>(
      aiva.url,
      '{ users(first: 100) { edges { node { id } } } }',
      {},
      token,
    );
    const queries = [USERS_LIST, FEDERATED, ENTITIES, mixOf(users.edges.map((e) => e.node.id))];

    // The same answer from each gateway, before any load.
    for (const query of queries) {
      const answers = await Promise.all(
        gateways.map((g) =>
          graphqlOnce(g.url, query.body.query, query.body.variables, token).then(
            (data) => JSON.stringify(data),
            (error: unknown) => `${g.name} failed: ${String(error)}`,
          ),
        ),
      );
      const same = answers.every((a) => a === answers[0]);
      console.log(
        `${query.name}: ${same ? 'the same answer from the three' : `ANSWERS DIFFER\n${answers.map((a) => a.slice(0, 300)).join('\n')}`}`,
      );
    }

    const results: Array<{ query: BenchQuery; runs: Run[] }> = [];
    for (const query of queries) {
      const options = { headers, ...(query.nextBody ? { nextBody: query.nextBody } : {}) };
      for (const g of gateways) await load('warm-up', g.url, query.body, { ...options, durationS: 2 });
      const runs: Run[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        for (const g of gateways) {
          const figures = await load(g.name, g.url, query.body, options);
          runs.push({ ...figures, gateway: g.name, round, rssMb: rssMb(g.pid) });
        }
      }
      printQueryTable(query, runs);
      results.push({ query, runs });
    }
    printSummary(results);
  } finally {
    for (const g of gateways) g.stop();
  }
}

/** Monotonic clock in microseconds: the clock of a V8 CPU profile's timestamps. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

async function profile(system: RunningSystem, supergraphPath: string, token: string): Promise<void> {
  const headers = { authorization: `Bearer ${token}` };
  const dir = mkdtempSync(join(tmpdir(), 'aiva-gateway-profile-'));
  const aiva = await startAivaGateway(system, supergraphPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  let figures: Figures;
  let window: { fromUs: number; toUs: number };
  try {
    await waitServing(aiva, token, aiva.tail);
    await load('warm-up', aiva.url, USERS_LIST.body, { headers, durationS: 2 });
    const fromUs = monotonicUs();
    figures = await load('AIVA', aiva.url, USERS_LIST.body, { headers, durationS: PROFILE_S });
    window = { fromUs, toUs: monotonicUs() };
  } finally {
    aiva.stop();
  }
  // The profile is written as the process exits: it must exit by itself (SIGINT → close → exit 0).
  const code = await aiva.exited;
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (code !== 0 || !file) {
    throw new Error(`gateway exited with ${code}, profile ${file ?? 'not written'}\n${aiva.tail.join('\n')}`);
  }
  const data = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  // Only the load's samples (not start-up nor warm-up), when the clocks agree.
  const inWindow = data.startTime <= window.fromUs && data.endTime >= window.toUs;
  console.log(
    `\n### CPU profile of AIVA's gateway: ${USERS_LIST.name}, ${PROFILE_S} s, ${CONNECTIONS} connections\n`,
  );
  console.log(
    `under the profiler: ${figures.requestsPerSecond.toFixed(0)} req/s, p50 ${figures.p50} ms, p99 ${figures.p99} ms, ${figures.errors} errors; gateway exited ${code}`,
  );
  console.log(`profile: ${join(dir, file)} (${inWindow ? 'samples of the load only' : 'all samples'})\n`);
  console.log(summarizeCpuProfile(data, { root: ROOT, top: 25, ...(inWindow ? { window } : {}) }));
}

console.log('building (tsc -b)…');
execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b'], {
  cwd: ROOT,
  stdio: 'inherit',
});
const dataDir = mkdtempSync(join(tmpdir(), 'aiva-bench-gateway-'));
const system = await startSystem({
  dataDir,
  args: ['start'],
  built: true,
  env: {
    AIVA_ADMIN_EMAILS: BENCH_ADMIN.email,
    SIGNIN_MAX_FAILURES_PER_IP: '1000000',
    AUTH_REQUESTS_PER_ADDRESS: '1000000',
    REGISTRY_SECRET,
    // One token for the whole run.
    ACCESS_TOKEN_TTL_SECONDS: '3600',
  },
});
try {
  const token = await benchAdminToken(system.gatewayUrl, dataDir);
  await seedUsers(system.gatewayUrl, token, SEED);
  const supergraphPath = supergraphFor(system, dataDir);
  if (PROFILE) await profile(system, supergraphPath, token);
  else await bench(system, supergraphPath, token);
} finally {
  await system.stop('SIGINT');
  rmSync(dataDir, { recursive: true, force: true });
}
