import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuthApp, authEnvSchema, createAuthApp } from '@aiva/auth';
import { createGatewayApp, type GatewayApp, gatewayEnvSchema, readSupergraph } from '@aiva/gateway';
import { createNotificationsApp, type NotificationsApp, notificationsEnvSchema } from '@aiva/notifications';
import { createMemoryBus, type EventBus, type Logger, loadConfig } from '@aiva/shared';
import { createUsersApp, type UsersApp, usersEnvSchema } from '@aiva/users';
import { silentLogger } from './stack.js';

export interface InProcessStackOptions {
  /** Variables on top of the test defaults (ports 0, silent logs, a fresh DATA_DIR). */
  env?: Record<string, string>;
  /** The bus every service shares (default: a new in-process bus). */
  bus?: EventBus;
  /** Keep data here (and leave it on stop), e.g. to start the stack again on the same data. */
  dataDir?: string;
  logger?: Logger;
}

export interface InProcessStack {
  gatewayUrl: string;
  /** auth's own base URL (its JWKS endpoint lives there). */
  authUrl: string;
  auth: AuthApp;
  users: UsersApp;
  notifications: NotificationsApp;
  gateway: GatewayApp;
  bus: EventBus;
  dataDir: string;
  /** users' GraphQL URL (where auth calls it directly, and the gateway routes). */
  usersUrl: string;
  /** notifications' GraphQL URL. */
  notificationsUrl: string;
  /**
   * Where auth calls users from now on (e.g. a closed port, to make users unreachable for auth only); `null`
   * goes back to users' real URL.
   */
  routeAuthToUsers(url: string | null): void;
  /** Stops the gateway first, then users, then auth; removes the data directory unless it was given. */
  stop(): Promise<void>;
}

/**
 * All of AIVA in this process, wired as in production but without the orchestrator: auth, users, notifications
 * and the gateway on free ports over real HTTP, the committed supergraph, tokens signed by auth's own keys and verified by the
 * gateway and users against auth's JWKS endpoint, auth calling users directly, and one in-process bus. For tests
 * that need the whole system and want to reach into its parts; `pnpm start` runs each service in its own process.
 */
export async function startInProcessStack(options: InProcessStackOptions = {}): Promise<InProcessStack> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'aiva-stack-'));
  const logger = options.logger ?? silentLogger;
  const env = {
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    AUTH_PORT: '0',
    USERS_PORT: '0',
    NOTIFICATIONS_PORT: '0',
    GATEWAY_PORT: '0',
    ...options.env,
  };
  const bus = options.bus ?? createMemoryBus();
  const started: Array<{ close(): Promise<void> }> = [];
  const stop = async () => {
    for (const app of started.reverse()) await app.close();
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    let usersUrl = '';
    let authUsersUrl: string | null = null;
    const auth = await createAuthApp({
      config: loadConfig(authEnvSchema, env),
      logger: logger.child({ service: 'auth' }),
      bus,
      discovery: false,
      subgraphUrls: () => ({ users: authUsersUrl ?? usersUrl }),
    });
    const authUrl = await auth.listen();
    started.push(auth);
    const jwks = { AUTH_JWKS_URL: `${authUrl}/.well-known/jwks.json` };
    const users = await createUsersApp({
      config: loadConfig(usersEnvSchema, { ...env, ...jwks }),
      logger: logger.child({ service: 'users' }),
      bus,
      discovery: false,
    });
    usersUrl = `${await users.listen()}/graphql`;
    started.push(users);
    const notifications = await createNotificationsApp({
      config: loadConfig(notificationsEnvSchema, { ...env, ...jwks }),
      logger: logger.child({ service: 'notifications' }),
      bus,
      discovery: false,
    });
    const notificationsUrl = `${await notifications.listen()}/graphql`;
    started.push(notifications);
    const gateway = await createGatewayApp({
      config: loadConfig(gatewayEnvSchema, { ...env, ...jwks }),
      logger: logger.child({ service: 'gateway' }),
      supergraphSdl: readSupergraph(),
      subgraphUrls: { auth: `${authUrl}/graphql`, users: usersUrl, notifications: notificationsUrl },
      discovery: false,
    });
    const gatewayUrl = `${await gateway.listen()}/graphql`;
    started.push(gateway);
    const routeAuthToUsers = (url: string | null) => {
      authUsersUrl = url;
    };
    return {
      gatewayUrl,
      authUrl,
      auth,
      users,
      notifications,
      gateway,
      bus,
      dataDir,
      usersUrl,
      notificationsUrl,
      routeAuthToUsers,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
