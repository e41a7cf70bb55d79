import { join } from 'node:path';
import {
  type AccessTokenVerifier,
  createCache,
  createLocalVerifier,
  createLogger,
  createServiceEvents,
  createSubgraphServer,
  type Logger,
  loadTypeDefs,
  type SubgraphApp,
  type SubgraphAppOptions,
} from '@aiva/shared';
import { AccountService, EVENT_SOURCE } from './account.service.js';
import type { AuthConfig } from './config.js';
import { createSupergraphProfileClient, type ProfileClient } from './profile.client.js';
import { type AuthContext, createAccountLoader, createResolvers } from './resolvers.js';
import { SessionService } from './session.service.js';
import { SignInLimiter } from './sign-in-limiter.js';
import { type KeyRing, openKeyRing } from './signing-keys.js';
import type { AccountStore } from './store/account.store.js';
import { connectMongoAccountStore } from './store/account-mongo.js';
import { openSqliteAccountStore } from './store/account-sqlite.js';
import type { SessionStore } from './store/session.store.js';
import { createRedisSessionStore } from './store/session-redis.js';
import { openSqliteSessionStore } from './store/session-sqlite.js';

export const authTypeDefs = loadTypeDefs(new URL('../schema.graphql', import.meta.url));

export const JWKS_PATH = '/.well-known/jwks.json';
const KEY_ROTATION_CHECK_MS = 60 * 60 * 1000;

export interface AuthApp extends SubgraphApp {
  keys: KeyRing;
  accounts: AccountStore;
  sessions: SessionStore;
  /** Verifies access tokens against auth's own keys (no HTTP round trip). */
  verifier: AccessTokenVerifier;
}

export interface AuthAppOptions extends SubgraphAppOptions<AuthConfig> {
  /** The supergraph URL for profile calls, read at call time (default AUTH_SUPERGRAPH_URL). */
  supergraphUrl?: () => string;
  /** Replaces the supergraph profile client (tests). */
  profiles?: ProfileClient;
}

function openAccountStore(config: AuthConfig, dbFile: string): Promise<AccountStore> | AccountStore {
  return config.MONGODB_URL
    ? connectMongoAccountStore({ url: config.MONGODB_URL })
    : openSqliteAccountStore({ file: dbFile });
}

function openSessionStore(
  config: AuthConfig,
  dbFile: string,
  logger: Logger,
): Promise<SessionStore> | SessionStore {
  return config.REDIS_URL
    ? createRedisSessionStore({ url: config.REDIS_URL, logger, keyPrefix: config.AUTH_REDIS_PREFIX })
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
  const accounts = await openAccountStore(config, dbFile);
  const sessions = await openSessionStore(config, dbFile, logger);
  const cache = await createCache({
    logger,
    keyPrefix: config.AUTH_REDIS_PREFIX,
    ...(config.REDIS_URL ? { redisUrl: config.REDIS_URL } : {}),
  });
  const events = await createServiceEvents({
    store: accounts,
    bus: options.bus,
    source: EVENT_SOURCE,
    natsUrl: config.NATS_URL,
    logger,
  });
  const { bus, relay } = events;
  const supergraphUrl = options.supergraphUrl ?? (() => config.AUTH_SUPERGRAPH_URL);
  const profiles = options.profiles ?? createSupergraphProfileClient({ url: supergraphUrl, keys });
  const sessionService = new SessionService(sessions, keys, {
    refreshTtlDays: config.REFRESH_TOKEN_TTL_DAYS,
    logger,
  });
  const limiter = new SignInLimiter(cache, {
    maxFailuresPerAccount: config.SIGNIN_MAX_FAILURES_PER_ACCOUNT,
    maxFailuresPerIp: config.SIGNIN_MAX_FAILURES_PER_IP,
    windowSeconds: config.SIGNIN_FAILURE_WINDOW_SECONDS,
  });
  const accountService = new AccountService(accounts, sessionService, profiles, limiter, {
    adminEmails: config.AIVA_ADMIN_EMAILS,
    passwordResetTtlMinutes: config.PASSWORD_RESET_TTL_MINUTES,
    emailVerificationTtlHours: config.EMAIL_VERIFICATION_TTL_HOURS,
    logger,
    onEventWritten: () => relay.notify(),
  });
  const verifier = createLocalVerifier({
    issuer: config.AUTH_ISSUER,
    audience: config.AUTH_AUDIENCE,
    keys: () => keys.jwks(),
  });
  const rotation = setInterval(() => {
    keys.rotateIfDue().catch((error: unknown) => logger.error({ err: error }, 'signing key rotation failed'));
  }, KEY_ROTATION_CHECK_MS);
  rotation.unref();

  const server = await createSubgraphServer<AuthContext>({
    name: 'auth',
    logger,
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
      { name: 'cache', check: () => cache.ping() },
      { name: 'events', check: () => bus.ping() },
    ],
    configure: (app) => {
      app.get(JWKS_PATH, async (_request, reply) =>
        reply.header('cache-control', 'public, max-age=300').send(keys.jwks()),
      );
    },
    onClose: [
      async () => clearInterval(rotation),
      ...events.closers,
      () => cache.close(),
      () => sessions.close(),
      () => accounts.close(),
    ],
  });
  relay.start();
  return {
    server,
    keys,
    accounts,
    sessions,
    verifier,
    listen: () => server.listen({ port: config.AUTH_PORT, host: config.HOST }),
    close: () => server.close(),
  };
}
