import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AccessTokenVerifier,
  createCache,
  createEventBus,
  createLocalVerifier,
  createLogger,
  createSubgraphServer,
  type EventBus,
  type GraphQLHttpServer,
  type Logger,
  OutboxRelay,
} from '@aiva/shared';
import { parse } from 'graphql';
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

export const authTypeDefs = parse(readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8'));

export const JWKS_PATH = '/.well-known/jwks.json';
const KEY_ROTATION_CHECK_MS = 60 * 60 * 1000;

export interface AuthApp {
  server: GraphQLHttpServer;
  keys: KeyRing;
  accounts: AccountStore;
  sessions: SessionStore;
  /** Verifies access tokens against auth's own keys (no HTTP round trip). */
  verifier: AccessTokenVerifier;
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface AuthAppOptions {
  config: AuthConfig;
  logger?: Logger;
  bus?: EventBus;
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
  const ownsBus = !options.bus;
  const bus =
    options.bus ??
    (await createEventBus({
      source: EVENT_SOURCE,
      logger,
      ...(config.NATS_URL ? { natsUrl: config.NATS_URL } : {}),
    }));
  const relay = new OutboxRelay({ store: accounts, bus, logger });
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
      () => relay.stop(),
      ...(ownsBus ? [() => bus.close()] : []),
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
