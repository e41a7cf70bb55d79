import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGatewayApp, gatewayEnvSchema } from '@aiva/gateway';
import { createLogger, createMemoryBus, loadConfig } from '@aiva/shared';
import { createUsersApp, openSqliteUserStore, usersEnvSchema } from '@aiva/users';

/**
 * One process of the system under benchmark, on a free port:
 *   bench-stack.ts users            the users subgraph on a SQLite file (the embedded default), seeded with
 *                                   BENCH_ADMIN_TOKEN's rights
 *   bench-stack.ts gateway <url>    the gateway in front of the users subgraph at <url>
 * Tokens are verified against AUTH_JWKS_URL. Rate limits are off: one load generator is one client.
 * Prints one JSON line `{ "url": ... }` once ready; stops on SIGTERM.
 */
const [role, usersUrl] = process.argv.slice(2);
const seedUsers = Number(process.env.SEED_USERS ?? 200);
const logger = createLogger(`bench-${role}`, { level: 'warn', destination: process.stderr });

async function startUsers() {
  const dir = mkdtempSync(join(tmpdir(), 'aiva-bench-'));
  const app = await createUsersApp({
    config: loadConfig(usersEnvSchema, { ...process.env, USERS_PORT: '0', LOG_LEVEL: 'warn' }),
    logger,
    bus: createMemoryBus(),
    store: openSqliteUserStore({ file: join(dir, 'users.sqlite') }),
  });
  const url = `${await app.listen()}/graphql`;
  for (let i = 0; i < seedUsers; i++) {
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${process.env.BENCH_ADMIN_TOKEN}`,
      },
      body: JSON.stringify({
        query: 'mutation($input: CreateUserInput!) { createUser(input: $input) { id } }',
        variables: {
          input: {
            email: `bench${i}@example.test`,
            username: `bench_${i}`,
            firstName: 'Bench',
            lastName: `User ${i}`,
          },
        },
      }),
    });
    if (!response.ok) throw new Error(`seeding failed: HTTP ${response.status}`);
  }
  return {
    url,
    stop: async () => {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startGateway(subgraphUrl: string) {
  const app = await createGatewayApp({
    // One load generator on one IP: the per-client rate limit is off for the measurement.
    config: loadConfig(gatewayEnvSchema, {
      ...process.env,
      GATEWAY_PORT: '0',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_MAX: '0',
    }),
    logger,
    subgraphUrls: { users: subgraphUrl },
    discovery: false,
  });
  return { url: `${await app.listen()}/graphql`, stop: () => app.close() };
}

const running =
  role === 'users'
    ? await startUsers()
    : role === 'gateway' && usersUrl
      ? await startGateway(usersUrl)
      : undefined;
if (!running) {
  process.stderr.write('usage: bench-stack.ts users | gateway <users-url>\n');
  process.exit(2);
}
process.stdout.write(`${JSON.stringify({ url: running.url })}\n`);
process.once('SIGTERM', async () => {
  await running.stop();
  process.exit(0);
});
