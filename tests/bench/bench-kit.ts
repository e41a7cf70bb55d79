import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createTestTokenIssuer } from '@aiva/shared/testing/tokens';
import autocannon from 'autocannon';
import { verifyEmailThrough } from '../helpers/sealed-mail.js';

/** Shared pieces of the benchmark scripts: server processes and autocannon runs that print comparable figures. */

export const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
export const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);

export interface Figures {
  target: string;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

/**
 * Starts one server process (its own event loop, as in production) and waits for the `{ "url": … }` line it
 * prints: bench-stack.ts with `args`, or (`script: true`) the script `args[0]` with the rest as its arguments.
 */
export async function startProcess(
  args: string[],
  env: Record<string, string> = {},
  options: { script?: boolean } = {},
): Promise<{ url: string; pid: number; stop: () => void }> {
  const script = options.script ? args[0]! : fileURLToPath(new URL('./bench-stack.ts', import.meta.url));
  const rest = options.script ? args.slice(1) : args;
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=aiva-source', script, ...rest], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`bench-stack ${args[0]} exited early (code ${code})`)));
    lines.on('line', (line) => {
      if (line.startsWith('{"url"')) resolve((JSON.parse(line) as { url: string }).url);
    });
  });
  return { url, pid: child.pid!, stop: () => child.kill('SIGTERM') };
}

/**
 * POSTs one GraphQL operation for `durationS` seconds over CONNECTIONS connections; or, with `nextBody`, a body
 * of its making for every request (distinct operations, which no deduplication can merge).
 */
export async function load(
  target: string,
  url: string,
  body: { query: string; variables?: Record<string, unknown> },
  options: { durationS?: number; headers?: Record<string, string>; nextBody?: () => string } = {},
): Promise<Figures> {
  const { nextBody } = options;
  const result = await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: JSON.stringify(body),
    ...(nextBody ? { requests: [{ setupRequest: (request) => ({ ...request, body: nextBody() }) }] } : {}),
    connections: CONNECTIONS,
    duration: options.durationS ?? DURATION_S,
    // A GraphQL error rides in a 200: count it as a failed request (autocannon's body mismatches).
    verifyBody: (body) => !String(body ?? '').includes('"errors"'),
  });
  return {
    target,
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx + (result.mismatches ?? 0),
  };
}

export function printTable(title: string, rows: Figures[]): void {
  console.log(`\n${title}\n${CONNECTIONS} connections, ${DURATION_S} s each, Node ${process.version}\n`);
  console.log('| target | requests/s | p50 (ms) | p99 (ms) | errors |');
  console.log('|---|---:|---:|---:|---:|');
  for (const f of rows) {
    console.log(`| ${f.target} | ${f.requestsPerSecond.toFixed(0)} | ${f.p50} | ${f.p99} | ${f.errors} |`);
  }
}

/** POSTs a GraphQL operation once and returns `data`, throwing on errors (setup steps of a benchmark). */
export async function graphqlOnce<T>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: unknown[] };
  if (body.errors || !body.data) throw new Error(`setup query failed: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/**
 * An access-token issuer for benchmarks of services without auth: an Ed25519 key whose JWKS is served on a free
 * port, so the services under test verify tokens exactly as in production (remote JWKS).
 */
export async function startJwksIssuer() {
  const issuer = await createTestTokenIssuer();
  const server = createServer((_request, response) => {
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ keys: [issuer.publicJwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { issuer, jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`, stop: () => server.close() };
}

/** The admin the benchmarks act as: start the system with `AIVA_ADMIN_EMAILS: BENCH_ADMIN.email`. */
export const BENCH_ADMIN = { email: 'bench-admin@example.test', password: 'benchmark password' };

/**
 * An admin access token: BENCH_ADMIN signs in, or (the first time on this data directory) signs up and proves its
 * address with the verification mail read from `dataDir` (an AIVA_ADMIN_EMAILS address is admin once verified).
 */
export async function benchAdminToken(gatewayUrl: string, dataDir: string): Promise<string> {
  const signedIn = await graphqlOnce<{ signIn: { accessToken: string } }>(
    gatewayUrl,
    'mutation($i: SignInInput!) { signIn(input: $i) { accessToken } }',
    { i: BENCH_ADMIN },
  ).catch(() => undefined);
  if (signedIn) return signedIn.signIn.accessToken;
  const { signUp } = await graphqlOnce<{ signUp: { accessToken: string; refreshToken: string } }>(
    gatewayUrl,
    'mutation($i: SignUpInput!) { signUp(input: $i) { accessToken refreshToken } }',
    { i: { ...BENCH_ADMIN, username: 'bench_admin', firstName: 'Bench', lastName: 'Admin' } },
  );
  return (await verifyEmailThrough(gatewayUrl, dataDir, signUp, BENCH_ADMIN.email, 30_000)).accessToken;
}

/** Creates `count` profiles (`seed<i>@example.test`) as the admin. */
export async function seedUsers(gatewayUrl: string, token: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await graphqlOnce(
      gatewayUrl,
      'mutation($input: CreateUserInput!) { createUser(input: $input) { id } }',
      {
        input: { email: `seed${i}@example.test`, username: `seed_${i}`, firstName: 'Seed', lastName: `${i}` },
      },
      token,
    );
  }
}
