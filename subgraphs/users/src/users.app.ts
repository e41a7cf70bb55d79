import { join } from 'node:path';
import {
  type AccessTokenVerifier,
  createLogger,
  createRemoteVerifier,
  createServiceEvents,
  createSubgraphServer,
  discoveryFromEnv,
  embeddedEventsFile,
  loadTypeDefs,
  type OutboxRelay,
  type SubgraphApp,
  type SubgraphAppOptions,
} from '@aiva/shared';
import type { UsersConfig } from './config.js';
import { createResolvers, createUserLoader, type UsersContext } from './resolvers.js';
import { openSqliteUserStore } from './store/sqlite.js';
import type { UserStore } from './store/user.store.js';
import { EVENT_SOURCE, UserService } from './user.service.js';

/** The subgraph's SDL, read from the file supergraph.yaml composes (one source of truth). */
export const usersTypeDefs = loadTypeDefs(new URL('../schema.graphql', import.meta.url));

export interface UsersApp extends SubgraphApp {
  store: UserStore;
  relay: OutboxRelay;
}

export interface UsersAppOptions extends SubgraphAppOptions<UsersConfig> {
  /** An existing store (tests); otherwise MongoDB when MONGODB_URL is set, else SQLite under DATA_DIR. */
  store?: UserStore;
  /** Access-token verification; default: auth's JWKS at AUTH_JWKS_URL. */
  verifier?: AccessTokenVerifier;
}

export async function openUserStore(config: UsersConfig): Promise<UserStore> {
  if (config.MONGODB_URL) {
    // Loaded only when used: mongoose is some 30 MB of memory a SQLite deployment does not need.
    const { connectMongoUserStore } = await import('./store/mongo.js');
    return connectMongoUserStore({ url: config.MONGODB_URL });
  }
  return openSqliteUserStore({ file: config.USERS_DB_FILE ?? join(config.DATA_DIR, 'users.sqlite') });
}

/** config → adapters → subgraph server. Nothing listens until `listen()`. */
export async function createUsersApp(options: UsersAppOptions): Promise<UsersApp> {
  const { config } = options;
  const logger = options.logger ?? createLogger('users', { level: config.LOG_LEVEL });
  const store = options.store ?? (await openUserStore(config));
  const events = await createServiceEvents({
    store,
    bus: options.bus,
    source: EVENT_SOURCE,
    natsUrl: config.NATS_URL,
    file: embeddedEventsFile(config),
    logger,
  });
  const { bus, relay } = events;
  const service = new UserService(store, () => relay.notify());

  const server = await createSubgraphServer<UsersContext>({
    name: 'users',
    logger,
    typeDefs: usersTypeDefs,
    resolvers: createResolvers(service),
    auth:
      options.verifier ??
      createRemoteVerifier({
        jwksUrl: config.AUTH_JWKS_URL,
        issuer: config.AUTH_ISSUER,
        audience: config.AUTH_AUDIENCE,
      }),
    context: (base) => ({ ...base, userLoader: createUserLoader(service) }),
    readiness: [
      { name: 'store', check: () => store.ping() },
      { name: 'events', check: () => bus.ping() },
    ],
    ...((options.discovery ?? true) ? { discovery: discoveryFromEnv(config) } : {}),
    onClose: [...events.closers, () => store.close()],
  });
  relay.start();
  return {
    server,
    store,
    relay,
    listen: () => server.listen({ port: config.USERS_PORT, host: config.HOST }),
    close: () => server.close(),
  };
}
