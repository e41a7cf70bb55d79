import { join } from 'node:path';
import {
  type AccessTokenVerifier,
  createCache,
  createDependencyMonitor,
  createLocalVerifier,
  createLogger,
  createServiceEvents,
  createServiceRouting,
  createSubgraphServer,
  type DependencyMonitor,
  discoveryFromEnv,
  embeddedCacheFile,
  introspectionOf,
  type Logger,
  loadSealingKeys,
  loadServiceSecret,
  loadTypeDefs,
  mongoTimeoutsOf,
  operationLimitsOf,
  redisTimeoutsOf,
  revocationAwareVerifier,
  type SealingKeys,
  type SubgraphApp,
  type SubgraphAppOptions,
  sealingKeysFile,
  serviceEventsConfigOf,
  sessionRevocations,
} from '@aiva/shared';
import { AccountService, EVENT_SOURCE } from './account.service.js';
import type { AuthConfig } from './config.js';
import { registerOAuthTokenRoute } from './oauth-token.js';
import { createProfileClient, type ProfileClient } from './profile.client.js';
import { ProfileRemovals } from './profile-removals.js';
import { RequestBudgets } from './request-budgets.js';
import { type AuthContext, createAccountLoader, createResolvers } from './resolvers.js';
import { SessionService } from './session.service.js';
import { SignInLimiter } from './sign-in-limiter.js';
import { type KeyRing, openKeyRing } from './signing-keys.js';
import type { AccountStore } from './store/account.store.js';
import { openSqliteAccountStore } from './store/account-sqlite.js';
import type { SessionStore } from './store/session.store.js';
import { createRedisSessionStore } from './store/session-redis.js';
import { openSqliteSessionStore } from './store/session-sqlite.js';

export const authTypeDefs = loadTypeDefs(new URL('../schema.graphql', import.meta.url));

export const JWKS_PATH = '/.well-known/jwks.json';
const KEY_ROTATION_CHECK_MS = 60 * 60 * 1000;
/** The durable consumer that removes accounts whose profile was deleted. */
export const ACCOUNT_REMOVAL_CONSUMER = 'auth.account-removal';

export interface AuthApp extends SubgraphApp {
  keys: KeyRing;
  accounts: AccountStore;
  sessions: SessionStore;
  /**
   * Verifies access tokens against auth's own keys (no HTTP round trip), refusing those of ended sessions (the
   * shared cache's revocation marks), as the gateway does: auth can be reached directly.
   */
  verifier: AccessTokenVerifier;
  /** The event sealing keys (EVENT_SEALING_KEYS or the keys file): single-use tokens in events are sealed. */
  sealing: SealingKeys;
  /** The durable undo of half-done sign-ups (retried in the background; `runDue()` runs a round now). */
  profileRemovals: ProfileRemovals;
}

export interface AuthAppOptions extends SubgraphAppOptions<AuthConfig> {
  /**
   * Where users is while no routing table was ever received (read at call time); default: the committed
   * supergraph's routing URL, or SUBGRAPH_USERS_URL.
   */
  subgraphUrls?: () => Record<string, string>;
  /** Replaces the profile client (tests). */
  profiles?: ProfileClient;
}

/** The account store of the configuration: MongoDB with MONGODB_URL, else SQLite in `dbFile`. */
export async function openAccountStore(config: AuthConfig, dbFile: string): Promise<AccountStore> {
  if (!config.MONGODB_URL) return openSqliteAccountStore({ file: dbFile });
  // Loaded only when used: mongoose is some 30 MB of memory a SQLite deployment does not need.
  const { connectMongoAccountStore } = await import('./store/account-mongo.js');
  return connectMongoAccountStore({ url: config.MONGODB_URL, ...mongoTimeoutsOf(config) });
}

/**
 * Sessions live in Redis when REDIS_URL is set: a hard dependency (auth waits REDIS_CONNECT_TIMEOUT_MS for it at
 * start, then exits with a clear message), else in the SQLite file.
 */
function openSessionStore(
  config: AuthConfig,
  dbFile: string,
  logger: Logger,
  dependencies: DependencyMonitor,
): Promise<SessionStore> | SessionStore {
  return config.REDIS_URL
    ? createRedisSessionStore({
        url: config.REDIS_URL,
        logger,
        keyPrefix: config.AUTH_REDIS_PREFIX,
        ...redisTimeoutsOf(config),
        health: dependencies.reporter('sessions'),
      })
    : openSqliteSessionStore({ file: dbFile });
}

/** config → adapters → subgraph server (with the JWKS endpoint). Nothing listens until `listen()`. */
export async function createAuthApp(options: AuthAppOptions): Promise<AuthApp> {
  const { config } = options;
  const logger = options.logger ?? createLogger('auth', { level: config.LOG_LEVEL });
  const dbFile = config.AUTH_DB_FILE ?? join(config.DATA_DIR, 'auth.sqlite');
  const keys = await openKeyRing({
    file: config.AUTH_KEYS_FILE ?? join(config.DATA_DIR, 'auth-keys.json'),
    rotationDays: config.AUTH_KEY_ROTATION_DAYS,
    accessTokenTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
    issuer: config.AUTH_ISSUER,
    audience: config.AUTH_AUDIENCE,
    logger,
  });
  const sealing = await loadSealingKeys({
    keys: config.EVENT_SEALING_KEYS,
    file: sealingKeysFile(config),
    logger,
  });
  // What service credentials derive from (SERVICE_SECRET, else the machine's file): checked by POST /oauth/token.
  const serviceSecret = await loadServiceSecret(config, { logger });
  const accounts = await openAccountStore(config, dbFile);
  // The states of Redis (sessions: hard; cache: soft): one log line per change, and metrics.
  const dependencies = createDependencyMonitor(logger);
  const sessions = await openSessionStore(config, dbFile, logger, dependencies);
  const cache = await createCache({
    logger,
    keyPrefix: config.AUTH_REDIS_PREFIX,
    ...(config.REDIS_URL ? { redisUrl: config.REDIS_URL } : { file: embeddedCacheFile(config) }),
    redis: redisTimeoutsOf(config),
    health: dependencies.reporter('cache'),
  });
  const events = await createServiceEvents({
    store: accounts,
    bus: options.bus,
    source: EVENT_SOURCE,
    logger,
    ...serviceEventsConfigOf(config),
  });
  const { bus, relay } = events;
  const discovery = options.discovery ?? true;
  const routing = createServiceRouting({
    orchestratorUrl: config.ORCHESTRATOR_URL,
    follow: discovery,
    logger,
    ...(options.subgraphUrls ? { fallback: options.subgraphUrls } : {}),
  });
  const { router } = routing;
  const profiles = options.profiles ?? createProfileClient({ router, keys });
  // Ended sessions are marked where the gateway looks (the shared cache under its default prefix), for as long as
  // one of their access tokens could still pass (lifetime + the verifiers' 30 s clock tolerance).
  const revocationCache = await createCache({
    logger,
    ...(config.REDIS_URL ? { redisUrl: config.REDIS_URL } : { file: embeddedCacheFile(config) }),
    redis: redisTimeoutsOf(config),
    health: dependencies.reporter('cache'),
  });
  const sessionService = new SessionService(sessions, keys, {
    refreshTtlDays: config.REFRESH_TOKEN_TTL_DAYS,
    logger,
    revocations: sessionRevocations(revocationCache),
    revocationTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS + 30,
    maxSessionsPerUser: config.AUTH_MAX_SESSIONS_PER_USER,
  });
  const limiter = new SignInLimiter(cache, {
    maxFailuresPerAccount: config.SIGNIN_MAX_FAILURES_PER_ACCOUNT,
    maxFailuresPerIp: config.SIGNIN_MAX_FAILURES_PER_IP,
    windowSeconds: config.SIGNIN_FAILURE_WINDOW_SECONDS,
  });
  const budgets = new RequestBudgets(cache, {
    perEmail: config.AUTH_REQUESTS_PER_EMAIL,
    perAddress: config.AUTH_REQUESTS_PER_ADDRESS,
    windowSeconds: config.AUTH_REQUEST_WINDOW_SECONDS,
  });
  const profileRemovals = new ProfileRemovals(accounts, profiles, {
    retrySeconds: config.AUTH_PROFILE_REMOVAL_RETRY_SECONDS,
    logger,
  });
  const accountService = new AccountService(
    accounts,
    sessionService,
    { profiles, limiter, budgets, profileRemovals },
    {
      adminEmails: config.AIVA_ADMIN_EMAILS,
      passwordResetTtlMinutes: config.PASSWORD_RESET_TTL_MINUTES,
      emailVerificationTtlHours: config.EMAIL_VERIFICATION_TTL_HOURS,
      emailChangeTtlHours: config.EMAIL_CHANGE_TTL_HOURS,
      sealing,
      logger,
      onEventWritten: () => relay.notify(),
    },
  );
  // Auth can be reached directly, not only through the gateway: it refuses tokens of ended sessions too.
  const verifier = revocationAwareVerifier(
    createLocalVerifier({
      issuer: config.AUTH_ISSUER,
      audience: config.AUTH_AUDIENCE,
      keys: () => keys.jwks(),
    }),
    sessionRevocations(revocationCache),
    logger,
    dependencies.reporter('cache'),
  );
  // A profile removed in users (by the person or an admin) takes the account and its sessions with it.
  const removals = await bus.subscribe(
    ACCOUNT_REMOVAL_CONSUMER,
    'aiva.users.user.deleted.v1',
    async (event) => {
      // Once per event id, recorded in the account store with the removal (a late redelivery does nothing).
      await accountService.removeAccountOnce(ACCOUNT_REMOVAL_CONSUMER, event.id, event.data.id);
    },
  );
  const rotation = setInterval(() => {
    keys.rotateIfDue().catch((error: unknown) => logger.error({ err: error }, 'signing key rotation failed'));
  }, KEY_ROTATION_CHECK_MS);
  rotation.unref();

  const server = await createSubgraphServer<AuthContext>({
    name: 'auth',
    logger,
    // The same limits as the gateway (a subgraph can be called directly), from this service's configuration.
    operationLimits: operationLimitsOf(config),
    introspection: introspectionOf(config),
    typeDefs: authTypeDefs,
    resolvers: createResolvers(accountService, sessionService),
    auth: verifier,
    trustProxy: config.AUTH_TRUST_PROXY,
    context: (base, request) => ({
      ...base,
      accountLoader: createAccountLoader(accountService),
      client: { ip: base.ip ?? null, userAgent: request.headers['user-agent'] ?? null },
    }),
    readiness: [
      { name: 'accounts', check: () => accounts.ping() },
      { name: 'sessions', check: () => sessions.ping() },
      // Soft: without it sign-in limits and request budgets cannot count (reported under `degraded`).
      { name: 'cache', soft: true, check: () => cache.ping() },
      // Soft: while the bus is down the outbox keeps the events, writes succeed (reported under `degraded`).
      { name: 'events', check: () => bus.ping(), soft: true },
    ],
    dependencies,
    configure: async (app) => {
      app.get(JWKS_PATH, async (_request, reply) =>
        reply.header('cache-control', 'public, max-age=300').send(keys.jwks()),
      );
      // Service tokens for other services (client credentials). On auth's own port only: deliberately not among
      // the gateway routes below, so the public gateway never forwards it.
      await registerOAuthTokenRoute(app, { keys, secret: serviceSecret, logger });
    },
    // The JWKS is also public through the gateway's port: clients and other services need one origin.
    ...(discovery
      ? { discovery: { ...discoveryFromEnv(config), routes: [{ prefix: JWKS_PATH, websocket: false }] } }
      : {}),
    onClose: [
      async () => clearInterval(rotation),
      () => profileRemovals.stop(),
      () => routing.stop(),
      () => removals.stop(),
      ...events.closers,
      () => cache.close(),
      () => revocationCache.close(),
      () => sessions.close(),
      () => accounts.close(),
    ],
  });
  events.metrics.register(server.metrics.registry, server.dependencies);
  relay.start();
  profileRemovals.start();
  routing.start();
  return {
    server,
    keys,
    accounts,
    sessions,
    verifier,
    sealing,
    profileRemovals,
    listen: () => server.listen({ port: config.AUTH_PORT, host: config.HOST }),
    close: () => server.close(),
  };
}
