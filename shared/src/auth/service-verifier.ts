import type { Cache } from '../cache/cache.js';
import { createCache } from '../cache/create-cache.js';
import { type CommonEnv, embeddedCacheFile, redisTimeoutsOf } from '../config.js';
import type { Logger } from '../log.js';
import type { DependencyMonitor } from '../server/dependencies.js';
import type { ReadinessCheck } from '../server/readiness.js';
import { remoteVerifierOptionsOf, type TokenEnv } from './config.js';
import {
  revocationAwareVerifier,
  type SessionRevocations,
  sessionRevocations,
} from './session-revocations.js';
import { type AccessTokenVerifier, createRemoteVerifier } from './verifier.js';

/**
 * How a service other than auth checks access tokens: against auth's keys (kept verifying while auth cannot be
 * reached, up to JWKS_MAX_STALE_SECONDS; with none usable, HTTP 503 `AUTH_KEYS_UNAVAILABLE`, never 401), and
 * refusing the tokens of sessions auth has ended. `given` replaces the remote keys (tests). The readiness checks
 * report the keys as a soft dependency (`auth_keys`).
 */
export function serviceTokenVerifier(options: {
  config: TokenEnv;
  given?: AccessTokenVerifier;
  revocations: SessionRevocations;
  dependencies: DependencyMonitor;
  logger?: Logger;
}): { verifier: AccessTokenVerifier; readiness: ReadinessCheck[] } {
  const { config, given, revocations, dependencies, logger } = options;
  const remote = given
    ? undefined
    : createRemoteVerifier({
        ...remoteVerifierOptionsOf(config),
        health: dependencies.reporter('auth_keys'),
      });
  return {
    verifier: revocationAwareVerifier(
      given ?? (remote as AccessTokenVerifier),
      revocations,
      logger,
      dependencies.reporter('cache'),
    ),
    readiness: remote ? [{ name: 'auth_keys', soft: true, check: remote.checkKeys }] : [],
  };
}

/**
 * `serviceTokenVerifier` for a subgraph that can be reached directly (not only through the gateway): ended
 * sessions are looked up in the shared cache (Redis with REDIS_URL, else the machine's SQLite cache file, under
 * the prefix the gateway and auth use), opened here unless `revocations` is given. The cache is soft: the
 * service starts without Redis and accepts tokens unchecked while it does not answer (counted as degraded).
 * `readiness` includes the cache's soft check when it was opened here; `close` closes it.
 */
export async function subgraphTokenVerifier(options: {
  config: TokenEnv &
    Pick<
      CommonEnv,
      'REDIS_URL' | 'DATA_DIR' | 'CACHE_DB_FILE' | 'REDIS_COMMAND_TIMEOUT_MS' | 'REDIS_CONNECT_TIMEOUT_MS'
    >;
  given?: AccessTokenVerifier;
  revocations?: SessionRevocations;
  dependencies: DependencyMonitor;
  logger: Logger;
}): Promise<{ verifier: AccessTokenVerifier; readiness: ReadinessCheck[]; close(): Promise<void> }> {
  const { config, dependencies, logger } = options;
  let cache: Cache | undefined;
  let revocations = options.revocations;
  if (!revocations) {
    cache = await createCache({
      logger,
      ...(config.REDIS_URL ? { redisUrl: config.REDIS_URL } : { file: embeddedCacheFile(config) }),
      redis: redisTimeoutsOf(config),
      health: dependencies.reporter('cache'),
    });
    revocations = sessionRevocations(cache);
  }
  const tokens = serviceTokenVerifier({
    config,
    ...(options.given ? { given: options.given } : {}),
    revocations,
    dependencies,
    logger,
  });
  const opened = cache;
  return {
    verifier: tokens.verifier,
    readiness: [
      ...(opened ? [{ name: 'cache', soft: true, check: () => opened.ping() }] : []),
      ...tokens.readiness,
    ],
    close: async () => opened?.close(),
  };
}
