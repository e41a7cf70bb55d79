import type { Logger } from '../log.js';
import type { DependencyMonitor } from '../server/dependencies.js';
import type { ReadinessCheck } from '../server/readiness.js';
import { remoteVerifierOptionsOf, type TokenEnv } from './config.js';
import { revocationAwareVerifier, type SessionRevocations } from './session-revocations.js';
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
