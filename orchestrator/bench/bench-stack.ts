import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGatewayApp, gatewayEnvSchema } from '@aiva/gateway';
import { createLogger, createMemoryBus, loadConfig } from '@aiva/shared';
import { createUsersApp, openSqliteUserStore, usersEnvSchema } from '@aiva/users';

/**
 * The system under benchmark, in its own process: the users subgraph on a SQLite file (the embedded default)
 * and the gateway in front of it, both on free ports, with `SEED_USERS` users. Prints one JSON line with the
 * URLs once ready; stops on SIGTERM.
 */
const seedUsers = Number(process.env.SEED_USERS ?? 200);
const logger = createLogger('bench', { level: 'warn' });
const dir = mkdtempSync(join(tmpdir(), 'aiva-bench-'));
const bus = createMemoryBus();
const users = await createUsersApp({
  config: loadConfig(usersEnvSchema, { USERS_PORT: '0', LOG_LEVEL: 'warn' }),
  logger,
  bus,
  store: openSqliteUserStore({ file: join(dir, 'users.sqlite') }),
});
const usersUrl = `${await users.listen()}/graphql`;
for (let i = 0; i < seedUsers; i++) {
  const response = await fetch(usersUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
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
const gateway = await createGatewayApp({
  config: loadConfig(gatewayEnvSchema, { GATEWAY_PORT: '0', LOG_LEVEL: 'warn' }),
  logger,
  subgraphUrls: { users: usersUrl },
});
const gatewayUrl = `${await gateway.listen()}/graphql`;
process.stdout.write(`${JSON.stringify({ usersUrl, gatewayUrl })}\n`);

process.once('SIGTERM', async () => {
  await gateway.close();
  await users.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
});
