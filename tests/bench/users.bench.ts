import { load, printTable, startJwksIssuer, startProcess } from './bench-kit.js';

/**
 * `{ users(first: 20) { edges { node { id email displayName } } } }` against the users subgraph directly and
 * through the gateway, 20 connections each, after a warm-up. The users subgraph and the gateway each run in a
 * process of their own, as in production, apart from the load generator. Listing users is for admins: requests
 * carry an admin access token that both the gateway and users verify against a JWKS endpoint.
 */
const QUERY = { query: '{ users(first: 20) { edges { node { id email displayName } } } }' };

const jwks = await startJwksIssuer();
const env = { AUTH_JWKS_URL: jwks.jwksUrl };
const adminToken = await jwks.issuer.adminToken();
const headers = { authorization: `Bearer ${adminToken}` };
const users = await startProcess(['users'], { ...env, BENCH_ADMIN_TOKEN: adminToken });
const gateway = await startProcess(['gateway', users.url], env);
try {
  await load('warm-up', users.url, QUERY, { durationS: 2, headers });
  await load('warm-up', gateway.url, QUERY, { durationS: 2, headers });
  const direct = await load('users subgraph (direct)', users.url, QUERY, { headers });
  const viaGateway = await load('through the gateway', gateway.url, QUERY, { headers });
  printTable(`query: ${QUERY.query}`, [direct, viaGateway]);
  console.log(
    `\ngateway/direct throughput ratio: ${(viaGateway.requestsPerSecond / direct.requestsPerSecond).toFixed(2)}`,
  );
  if (direct.errors + viaGateway.errors > 0) process.exitCode = 1;
} finally {
  gateway.stop();
  users.stop();
  jwks.stop();
}
