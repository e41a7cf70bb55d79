import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { ROOT, startSystem } from '../system/helpers/system.js';
import { graphqlOnce, load, printTable } from './bench-kit.js';

/**
 * Auth figures through the gateway, with all of AIVA running as `pnpm start` runs it (the orchestrator and one
 * process per service from the built files, embedded defaults, rate limits off):
 * - sign-in requests/s (each one an argon2id verification, a new session and a signed access token);
 * - the cost of token verification: `{ me { id } }` with an access token (verified by the gateway against the
 *   JWKS, then by auth) against the same query anonymously (no verification; `me` is null).
 * The argon2id hash time itself is printed by subgraphs/auth/bench/argon2.bench.ts.
 */
execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b'], {
  cwd: ROOT,
  stdio: 'inherit',
});
const system = await startSystem({
  args: ['start'],
  built: true,
  // One load generator signs in to one account from one address: the sign-in limits are off for the measurement.
  env: { SIGNIN_MAX_FAILURES_PER_IP: '1000000', SIGNIN_MAX_FAILURES_PER_ACCOUNT: '1000000' },
});
const stack = { url: system.gatewayUrl };
try {
  const email = `bench-${randomUUID().slice(0, 8)}@example.test`;
  const password = 'benchmark password';
  const { signUp } = await graphqlOnce<{ signUp: { accessToken: string } }>(
    stack.url,
    'mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }',
    {
      i: {
        email,
        password,
        username: `bench_${randomUUID().slice(0, 8)}`,
        firstName: 'Bench',
        lastName: 'Mark',
      },
    },
  );
  const signIn = {
    query: 'mutation($i: SignInInput!) { signIn(input: $i) { accessToken } }',
    variables: { i: { email, password } },
  };
  const me = { query: '{ me { id } }' };
  let withToken = { headers: { authorization: `Bearer ${signUp.accessToken}` } };

  await load('warm-up', stack.url, me, { durationS: 2, ...withToken });
  const signIns = await load('signIn (argon2id verify + session)', stack.url, signIn);
  // Hundreds of sign-ins ended the oldest sessions (AUTH_MAX_SESSIONS_PER_USER), the sign-up's among them:
  // measure with a token of a live session.
  const fresh = await graphqlOnce<{ signIn: { accessToken: string } }>(
    stack.url,
    signIn.query,
    signIn.variables,
  );
  withToken = { headers: { authorization: `Bearer ${fresh.signIn.accessToken}` } };
  const authenticated = await load('{ me { id } } with an access token', stack.url, me, withToken);
  const anonymous = await load('{ me { id } } anonymous', stack.url, me);
  printTable('auth through the gateway', [signIns, authenticated, anonymous]);
  const perRequestMs = 1000 / authenticated.requestsPerSecond - 1000 / anonymous.requestsPerSecond;
  console.log(
    `\ntoken verification cost: authenticated/anonymous throughput ${(authenticated.requestsPerSecond / anonymous.requestsPerSecond).toFixed(2)}, ` +
      `about ${perRequestMs.toFixed(2)} ms of service time per request (2 verifications: gateway and auth)`,
  );
  if (signIns.errors + authenticated.errors + anonymous.errors > 0) process.exitCode = 1;
} finally {
  await system.stop('SIGINT');
}
