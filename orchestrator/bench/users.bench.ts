import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

/**
 * `pnpm bench`: `{ users(first: 20) { edges { node { id email displayName } } } }` against the users subgraph
 * directly and through the gateway, 20 connections each, after a warm-up. The users subgraph and the gateway
 * each run in a process of their own, as in production, apart from the load generator. Prints requests/s, p50 and p99, and the ratio.
 */
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);
const QUERY = '{ users(first: 20) { edges { node { id email displayName } } } }';

interface Figures {
  target: string;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

/** Starts one bench-stack process (its own event loop, as in production) and waits for its URL. */
async function startProcess(args: string[]): Promise<{ url: string; stop: () => void }> {
  const script = fileURLToPath(new URL('./bench-stack.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`bench-stack ${args[0]} exited early (code ${code})`)));
    lines.on('line', (line) => {
      if (line.startsWith('{"url"')) resolve((JSON.parse(line) as { url: string }).url);
    });
  });
  return { url, stop: () => child.kill('SIGTERM') };
}

async function load(target: string, url: string, durationS: number): Promise<Figures> {
  const result = await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: QUERY }),
    connections: CONNECTIONS,
    duration: durationS,
  });
  return {
    target,
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

const users = await startProcess(['users']);
const gateway = await startProcess(['gateway', users.url]);
const urls = { usersUrl: users.url, gatewayUrl: gateway.url };
try {
  // Warm-up: JIT, connection pools, the gateway's query-plan cache.
  await load('warm-up', urls.usersUrl, 2);
  await load('warm-up', urls.gatewayUrl, 2);
  const direct = await load('users subgraph (direct)', urls.usersUrl, DURATION_S);
  const viaGateway = await load('through the gateway', urls.gatewayUrl, DURATION_S);
  console.log(
    `\nquery: ${QUERY}\n${CONNECTIONS} connections, ${DURATION_S} s each, Node ${process.version}\n`,
  );
  console.log('| target | requests/s | p50 (ms) | p99 (ms) | errors |');
  console.log('|---|---:|---:|---:|---:|');
  for (const f of [direct, viaGateway]) {
    console.log(`| ${f.target} | ${f.requestsPerSecond.toFixed(0)} | ${f.p50} | ${f.p99} | ${f.errors} |`);
  }
  console.log(
    `\ngateway/direct throughput ratio: ${(viaGateway.requestsPerSecond / direct.requestsPerSecond).toFixed(2)}`,
  );
  if (direct.errors + viaGateway.errors > 0) process.exitCode = 1;
} finally {
  gateway.stop();
  users.stop();
}
