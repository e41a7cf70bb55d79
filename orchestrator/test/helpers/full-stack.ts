import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AuthApp, authEnvSchema, createAuthApp } from '@aiva/auth';
import { createGatewayApp, type GatewayApp, gatewayEnvSchema } from '@aiva/gateway';
import { createMemoryBus, type EventBus, loadConfig } from '@aiva/shared';
import { createUsersApp, type UsersApp, usersEnvSchema } from '@aiva/users';
import { silentLogger } from './stack.js';

const SUPERGRAPH = readFileSync(
  fileURLToPath(new URL('../../../supergraph.graphql', import.meta.url)),
  'utf8',
);

export interface FullStack {
  gatewayUrl: string;
  /** auth's own base URL (its JWKS endpoint lives there). */
  authUrl: string;
  auth: AuthApp;
  users: UsersApp;
  gateway: GatewayApp;
  bus: EventBus;
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * auth + users + gateway as in production, wired over real HTTP: the committed supergraph, tokens signed by
 * auth's own keys, and the gateway and users verifying them against auth's JWKS endpoint.
 */
export async function startFullStack(
  options: { env?: Record<string, string>; bus?: EventBus } = {},
): Promise<FullStack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'aiva-auth-'));
  const env = {
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    AUTH_PORT: '0',
    USERS_PORT: '0',
    GATEWAY_PORT: '0',
    ...options.env,
  };
  const bus = options.bus ?? createMemoryBus();
  let gatewayUrl = '';
  const auth = await createAuthApp({
    config: loadConfig(authEnvSchema, env),
    logger: silentLogger,
    bus,
    supergraphUrl: () => gatewayUrl,
  });
  const authBase = await auth.listen();
  const jwks = { AUTH_JWKS_URL: `${authBase}/.well-known/jwks.json` };
  const users = await createUsersApp({
    config: loadConfig(usersEnvSchema, { ...env, ...jwks }),
    logger: silentLogger,
    bus,
  });
  const usersBase = await users.listen();
  const gateway = await createGatewayApp({
    config: loadConfig(gatewayEnvSchema, { ...env, ...jwks }),
    logger: silentLogger,
    supergraphSdl: SUPERGRAPH,
    subgraphUrls: { auth: `${authBase}/graphql`, users: `${usersBase}/graphql` },
  });
  gatewayUrl = `${await gateway.listen()}/graphql`;
  return {
    gatewayUrl,
    authUrl: authBase,
    auth,
    users,
    gateway,
    bus,
    dataDir,
    async stop() {
      await gateway.close();
      await users.close();
      await auth.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
