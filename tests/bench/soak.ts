/**
 * Soak: AIVA as `pnpm start` runs it (orchestrator, gateway, auth, users ×2, each its own process) on a private
 * Redis and a private NATS JetStream, under a steady mix of queries and mutations, while Redis and NATS are killed
 * and restarted on a schedule. Bounded (SOAK_MINUTES, default 10) and loopback only.
 *
 * It prints: requests, failures by kind (operation and error code), latency p50/p99, the events the acknowledged
 * mutations produced against the events found in the stream afterwards (missing and duplicated must be 0; others
 * may only be whole sign-ups that answered an error after their writes), the services' error log lines, and the
 * memory (RSS) of every process at start and end. It exits 1 when the events do not add up or too many requests
 * failed.
 *
 *   pnpm soak                       # 10 minutes
 *   SOAK_MINUTES=2 pnpm soak        # shorter
 *
 * Variables: SOAK_MINUTES (10), SOAK_CLIENTS (8 concurrent clients), SOAK_CYCLE_S (150: one cycle = Redis down
 * 20 s, then NATS down 30 s), SOAK_SCALE (users=2), SOAK_MAX_FAILED_PERCENT (5: more failed requests fail the
 * soak).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REGISTRY_API } from '@aiva/shared';
import { startNatsServer } from '../system/helpers/nats-server.js';
import { countById, readStream } from '../system/helpers/nats-stream.js';
import { startRedisServer } from '../system/helpers/redis-server.js';
import { startSystem } from '../system/helpers/system.js';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 8);
const CYCLE_S = Number(process.env.SOAK_CYCLE_S ?? 150);
const SCALE = process.env.SOAK_SCALE ?? 'users=2';
const REQUEST_TIMEOUT_MS = 10_000;
/** More failed requests than this (in percent) fail the soak: the faults cover a fraction of the time only. */
const MAX_FAILED_PERCENT = Number(process.env.SOAK_MAX_FAILED_PERCENT ?? 5);

const SIGN_UP = 'mutation($i: SignUpInput!) { signUp(input: $i) { accessToken user { id } } }';
const UPDATE =
  'mutation($id: ID!, $i: UpdateUserInput!) { updateUser(id: $id, input: $i) { id displayName } }';
const ME = '{ me { id email username displayName } }';
const USER = 'query($id: ID!) { user(id: $id) { id username displayName } }';

type Operation = 'signUp' | 'updateUser' | 'me' | 'user';

interface Stats {
  requests: number;
  latencies: number[];
  failures: Map<string, number>;
  /** Events the acknowledged mutations produced: type → subject id → count. */
  expected: Map<string, Map<string, number>>;
  /** Mutations that failed without a clear answer: their events may or may not exist. */
  unacknowledgedMutations: number;
}

const stats: Stats = {
  requests: 0,
  latencies: [],
  failures: new Map(),
  expected: new Map(),
  unacknowledgedMutations: 0,
};

function expectEvent(type: string, subjectId: string): void {
  const byId = stats.expected.get(type) ?? new Map<string, number>();
  byId.set(subjectId, (byId.get(subjectId) ?? 0) + 1);
  stats.expected.set(type, byId);
}

function fail(operation: Operation, kind: string): void {
  const key = `${operation}: ${kind}`;
  stats.failures.set(key, (stats.failures.get(key) ?? 0) + 1);
}

interface Answer {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message: string; extensions?: { code?: string; reason?: string } }>;
}

/** One request; undefined when it failed (the failure is counted by kind). */
async function call(
  url: string,
  operation: Operation,
  query: string,
  variables: Record<string, unknown>,
  token?: string,
): Promise<Answer | undefined> {
  const started = performance.now();
  stats.requests++;
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const body = (await response.json()) as Answer;
    stats.latencies.push(performance.now() - started);
    if (body.errors?.length) {
      const first = body.errors[0];
      const code = first?.extensions?.code ?? `HTTP ${response.status}`;
      // The reason when there is one, else the message (AIVA's messages carry no internals).
      fail(operation, `${code}/${first?.extensions?.reason ?? first?.message.slice(0, 60)}`);
      return undefined;
    }
    return body;
  } catch (error) {
    stats.latencies.push(performance.now() - started);
    fail(operation, (error as Error).name === 'TimeoutError' ? 'client timeout' : 'network error');
    if (operation === 'signUp' || operation === 'updateUser') stats.unacknowledgedMutations++;
    return undefined;
  }
}

/** One client: signs up, then reads and writes as that person until `until`. */
async function client(url: string, index: number, until: number): Promise<void> {
  let me: { id: string; token: string } | undefined;
  let n = 0;
  while (Date.now() < until) {
    n++;
    if (!me || Math.random() < 0.03) {
      const tag = `${index}-${n}-${Math.random().toString(36).slice(2, 8)}`;
      const answer = await call(url, 'signUp', SIGN_UP, {
        i: {
          email: `soak-${tag}@example.test`,
          password: 'a soak test password',
          username: `soak_${tag.replaceAll('-', '_')}`,
          firstName: 'Soak',
          lastName: 'Test',
        },
      });
      const signUp = answer?.data?.signUp as { accessToken: string; user: { id: string } } | undefined;
      if (signUp) {
        me = { id: signUp.user.id, token: signUp.accessToken };
        expectEvent('aiva.users.user.created.v1', me.id);
        expectEvent('aiva.auth.user.registered.v1', me.id);
      } else {
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      continue;
    }
    const roll = Math.random();
    if (roll < 0.3) {
      const answer = await call(
        url,
        'updateUser',
        UPDATE,
        { id: me.id, i: { displayName: `Soak ${n}` } },
        me.token,
      );
      if (answer?.data?.updateUser) expectEvent('aiva.users.user.updated.v1', me.id);
    } else if (roll < 0.7) {
      await call(url, 'me', ME, {}, me.token);
    } else {
      await call(url, 'user', USER, { id: me.id }, me.token);
    }
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

function rssMb(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Math.round(Number(match[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

/** The event stream afterwards: per type, the subject ids of distinct events, and how many ids came twice. */
async function streamCounts(natsUrl: string): Promise<{
  found: Map<string, Map<string, number>>;
  duplicates: number;
}> {
  const events = await readStream(natsUrl);
  const found = new Map<string, Map<string, number>>();
  let duplicates = 0;
  for (const [, n] of countById(events)) duplicates += n - 1;
  const seen = new Set<string>();
  for (const { msgId, event } of events) {
    if (seen.has(msgId)) continue;
    seen.add(msgId);
    const byId = found.get(event.type) ?? new Map<string, number>();
    const subject = typeof event.data.id === 'string' ? event.data.id : '';
    byId.set(subject, (byId.get(subject) ?? 0) + 1);
    found.set(event.type, byId);
  }
  return { found, duplicates };
}

async function main(): Promise<void> {
  const redisDir = mkdtempSync(join(tmpdir(), 'aiva-soak-redis-'));
  const redis = await startRedisServer({ dir: redisDir });
  const nats = await startNatsServer();
  const [service, count] = SCALE.split('=');
  const system = await startSystem({
    args: ['start', '--runtime', 'source', ...(service && count ? ['--scale', `${service}=${count}`] : [])],
    env: {
      NATS_URL: nats.url,
      REDIS_URL: redis.url,
      LOG_LEVEL: 'warn',
      // Clients here are a handful of addresses doing a lot: the abuse budgets would (rightly) stop them.
      AUTH_REQUESTS_PER_ADDRESS: '1000000',
    },
  });
  /** Every process of the system: the orchestrator and the ones it supervises (from its status API). */
  const pids = async (): Promise<Array<{ label: string; pid: number | null }>> => {
    const status = (await (await fetch(new URL(REGISTRY_API.status, system.orchestratorUrl))).json()) as {
      processes: Array<{ slot: string; pid: number | null }> | null;
    };
    return [
      { label: 'orchestrator', pid: system.process.child.pid ?? null },
      ...(status.processes ?? []).map((p) => ({ label: p.slot, pid: p.pid })),
    ];
  };
  const memoryAtStart = (await pids()).map(({ label, pid }) => ({ label, mb: pid ? rssMb(pid) : undefined }));

  const durationMs = MINUTES * 60_000;
  const started = Date.now();
  const until = started + durationMs;
  const faults: string[] = [];
  const at = (ms: number) => `${((ms - started) / 1000).toFixed(0)} s`;
  const schedule = (async () => {
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    for (let cycle = started; cycle + CYCLE_S * 1000 <= until; cycle += CYCLE_S * 1000) {
      const wait = (offsetS: number) => sleep(Math.max(0, cycle + offsetS * 1000 - Date.now()));
      await wait(CYCLE_S * 0.2);
      await redis.stop();
      faults.push(`${at(Date.now())} Redis killed`);
      await wait(CYCLE_S * 0.2 + 20);
      await redis.start();
      faults.push(`${at(Date.now())} Redis restarted`);
      await wait(CYCLE_S * 0.6);
      await nats.stop();
      faults.push(`${at(Date.now())} NATS killed`);
      await wait(CYCLE_S * 0.6 + 30);
      await nats.start();
      faults.push(`${at(Date.now())} NATS restarted`);
    }
  })();

  const progress = setInterval(() => {
    const failed = [...stats.failures.values()].reduce((a, b) => a + b, 0);
    console.error(`soak: ${at(Date.now())}: ${stats.requests} requests, ${failed} failed`);
  }, 30_000);
  await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(system.gatewayUrl, i, until)));
  clearInterval(progress);
  await schedule;

  // Let the outboxes drain (NATS is up again), then read what reached the stream.
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  const memoryAtEnd = (await pids()).map(({ label, pid }) => ({ label, mb: pid ? rssMb(pid) : undefined }));
  let stream = await streamCounts(nats.url);
  for (let i = 0; i < 12 && countOf(stats.expected) > countMatched(stats.expected, stream.found); i++) {
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    stream = await streamCounts(nats.url);
  }
  await system.stop('SIGINT');
  await nats.stop();
  await redis.stop();
  rmSync(redisDir, { recursive: true, force: true });

  const produced = countOf(stats.expected);
  const matched = countMatched(stats.expected, stream.found);
  const unexpected = countOf(stream.found) - matched;
  const failed = [...stats.failures.values()].reduce((a, b) => a + b, 0);
  console.log(`\nAIVA soak: ${MINUTES} min, ${CLIENTS} clients, ${SCALE}, Node ${process.version}`);
  console.log(`faults: ${faults.join('; ')}`);
  console.log(`\n| figure | value |\n|---|---:|`);
  console.log(`| requests | ${stats.requests} |`);
  console.log(`| failed | ${failed} (${((100 * failed) / Math.max(1, stats.requests)).toFixed(2)} %) |`);
  console.log(
    `| latency p50 / p99 (ms) | ${percentile(stats.latencies, 50).toFixed(0)} / ${percentile(stats.latencies, 99).toFixed(0)} |`,
  );
  console.log(`| events produced (by acknowledged mutations) | ${produced} |`);
  console.log(`| events consumed (distinct, in the stream) | ${matched} of them, ${unexpected} others |`);
  console.log(`| events missing | ${produced - matched} |`);
  console.log(`| events published twice | ${stream.duplicates} |`);
  console.log(`| mutations without an answer | ${stats.unacknowledgedMutations} |`);
  console.log('\nfailures by kind:');
  if (stats.failures.size === 0) console.log('  none');
  for (const [kind, n] of [...stats.failures].sort((a, b) => b[1] - a[1])) console.log(`  ${kind}: ${n}`);
  console.log('\nmemory (RSS, MB), start → end:');
  for (const { label, mb } of memoryAtStart) {
    console.log(`  ${label}: ${mb ?? '?'} → ${memoryAtEnd.find((m) => m.label === label)?.mb ?? '?'}`);
  }
  console.log('\nerror log lines of the services, by message:');
  const errors = errorLines(system.process.lines);
  if (errors.size === 0) console.log('  none');
  for (const [line, n] of [...errors].sort((a, b) => b[1] - a[1]).slice(0, 15))
    console.log(`  ${n} × ${line}`);
  // Every event of an acknowledged mutation arrives, once. Events of no acknowledged mutation come from sign-ups
  // that answered an error after their account and profile were written (the session could not start): those
  // must come in whole pairs (the profile's and the account's), never one without the other.
  const orphans = halfSignUps(stats.expected, stream.found);
  const eventsOk = produced === matched && stream.duplicates === 0 && orphans === 0;
  const failedPercent = (100 * failed) / Math.max(1, stats.requests);
  if (unexpected > 0) {
    console.log(
      `\n${unexpected} events of sign-ups that answered an error after their writes; ${orphans} of them without their pair`,
    );
  }
  if (!eventsOk) console.log('\nSOAK FAILED: events produced and consumed differ');
  if (failedPercent > MAX_FAILED_PERCENT) {
    console.log(
      `\nSOAK FAILED: ${failedPercent.toFixed(2)} % of the requests failed (SOAK_MAX_FAILED_PERCENT ${MAX_FAILED_PERCENT})`,
    );
  }
  if (!eventsOk || failedPercent > MAX_FAILED_PERCENT) process.exitCode = 1;
}

/** Error lines (pino level 50+) in the supervisor's prefixed output, counted by service and message. */
function errorLines(lines: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines) {
    const match = /^(\S+)\s*│ (\{.*\})$/.exec(line);
    if (!match) continue;
    try {
      const entry = JSON.parse(match[2] ?? '') as { level?: number; msg?: string; err?: unknown };
      if ((entry.level ?? 0) < 50) continue;
      const err = typeof entry.err === 'string' ? entry.err : (entry.err as { message?: string })?.message;
      const key = `${match[1]}: ${entry.msg ?? ''}${err ? ` (${err.slice(0, 120)})` : ''}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    } catch {
      // not a log line
    }
  }
  return counts;
}

/** Sign-up events in the stream beyond the expected ones whose profile or account event is missing. */
function halfSignUps(
  expected: Map<string, Map<string, number>>,
  found: Map<string, Map<string, number>>,
): number {
  const extra = (type: string) =>
    new Set(
      [...(found.get(type) ?? new Map<string, number>()).keys()].filter((id) => !expected.get(type)?.has(id)),
    );
  const profiles = extra('aiva.users.user.created.v1');
  const accounts = extra('aiva.auth.user.registered.v1');
  let orphans = 0;
  for (const id of profiles) if (!accounts.has(id)) orphans++;
  for (const id of accounts) if (!profiles.has(id)) orphans++;
  return orphans;
}

function countOf(events: Map<string, Map<string, number>>): number {
  let total = 0;
  for (const byId of events.values()) for (const n of byId.values()) total += n;
  return total;
}

/** Expected events found in the stream (per type and subject id, at most as many as expected). */
function countMatched(
  expected: Map<string, Map<string, number>>,
  found: Map<string, Map<string, number>>,
): number {
  let total = 0;
  for (const [type, byId] of expected) {
    for (const [id, n] of byId) total += Math.min(n, found.get(type)?.get(id) ?? 0);
  }
  return total;
}

await main();
