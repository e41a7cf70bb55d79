import { join } from 'node:path';
import {
  type AccessTokenVerifier,
  createDependencyMonitor,
  createLogger,
  createServiceEvents,
  createSubgraphServer,
  discoveryFromEnv,
  introspectionOf,
  loadTypeDefs,
  mongoTimeoutsOf,
  type OutboxRelay,
  operationLimitsOf,
  type SessionRevocations,
  type SubgraphApp,
  type SubgraphAppOptions,
  serviceEventsConfigOf,
  subgraphTokenVerifier,
} from '@aiva/shared';
import type { UsersConfig } from './config.js';
import { createResolvers, createUserLoader, type UsersContext } from './resolvers.js';
import { openSqliteUserStore } from './store/sqlite.js';
import type { UserStore } from './store/user.store.js';
import { EVENT_SOURCE, UserService } from './user.service.js';

/** The durable consumer that makes a profile's email follow the account's (auth owns emails). */
export const EMAIL_SYNC_CONSUMER = 'users.email-sync';

/** The subgraph's SDL, read from the file supergraph.yaml composes (one source of truth). */
export const usersTypeDefs = loadTypeDefs(new URL('../schema.graphql', import.meta.url));

export interface UsersApp extends SubgraphApp {
  store: UserStore;
  relay: OutboxRelay;
}

export interface UsersAppOptions extends SubgraphAppOptions<UsersConfig> {
  /** An existing store (tests); otherwise MongoDB when MONGODB_URL is set, else SQLite under DATA_DIR. */
  store?: UserStore;
  /**
   * Access-token verification; default: auth's JWKS at AUTH_JWKS_URL. Either way tokens of ended sessions are
   * refused too (`revocations`).
   */
  verifier?: AccessTokenVerifier;
  /**
   * Where ended sessions are marked; default: the shared cache (Redis with REDIS_URL, else the machine's SQLite
   * cache file) under the prefix the gateway and auth use.
   */
  revocations?: SessionRevocations;
}

export async function openUserStore(config: UsersConfig): Promise<UserStore> {
  if (config.MONGODB_URL) {
    // Loaded only when used: mongoose is some 30 MB of memory a SQLite deployment does not need.
    const { connectMongoUserStore } = await import('./store/mongo.js');
    return connectMongoUserStore({ url: config.MONGODB_URL, ...mongoTimeoutsOf(config) });
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
    logger,
    ...serviceEventsConfigOf(config),
  });
  const { bus, relay } = events;
  const service = new UserService(store, () => relay.notify());
  // The states of the soft dependencies (Redis, auth's keys): one log line per change, and metrics.
  const dependencies = createDependencyMonitor(logger);
  // Users can be reached directly, not only through the gateway: it refuses tokens of ended sessions as well.
  const tokens = await subgraphTokenVerifier({
    config,
    ...(options.verifier ? { given: options.verifier } : {}),
    ...(options.revocations ? { revocations: options.revocations } : {}),
    dependencies,
    logger,
  });
  const verifier = tokens.verifier;
  // The account's email changed in auth (verified there): the profile's copy follows.
  const emailSync = await bus.subscribe(
    EMAIL_SYNC_CONSUMER,
    'aiva.auth.user.email_changed.v1',
    async (event) => {
      const result = await service.syncEmail(EMAIL_SYNC_CONSUMER, event);
      if (result === 'updated') logger.info({ userId: event.data.id }, 'profile email follows the account');
    },
  );

  const server = await createSubgraphServer<UsersContext>({
    name: 'users',
    logger,
    // The same limits as the gateway (a subgraph can be called directly), from this service's configuration.
    operationLimits: operationLimitsOf(config),
    introspection: introspectionOf(config),
    typeDefs: usersTypeDefs,
    resolvers: createResolvers(service),
    auth: verifier,
    context: (base) => ({ ...base, userLoader: createUserLoader(service) }),
    readiness: [
      { name: 'store', check: () => store.ping() },
      // Soft: while the bus is down the outbox keeps the events, writes succeed (reported under `degraded`).
      { name: 'events', check: () => bus.ping(), soft: true },
      ...tokens.readiness,
    ],
    dependencies,
    ...((options.discovery ?? true) ? { discovery: discoveryFromEnv(config) } : {}),
    onClose: [() => emailSync.stop(), ...events.closers, () => tokens.close(), () => store.close()],
  });
  events.metrics.register(server.metrics.registry, server.dependencies);
  relay.start();
  return {
    server,
    store,
    relay,
    listen: () => server.listen({ port: config.USERS_PORT, host: config.HOST }),
    close: () => server.close(),
  };
}
