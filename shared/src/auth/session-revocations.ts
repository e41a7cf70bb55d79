import type { Cache } from '../cache/cache.js';
import { unauthenticated } from '../errors.js';
import type { Logger } from '../log.js';
import type { DependencyReporter } from '../server/dependencies.js';
import type { AccessTokenVerifier } from './verifier.js';

/** Where a revoked session is marked, inside the cache's own prefix (`aiva:` by default). */
export const REVOKED_SESSION_KEY = 'sessions:revoked:';

/**
 * Sessions ended before their access tokens expire (sign-out, password change or reset, refresh-token reuse, a
 * removed account). Auth marks them in the shared cache for as long as an access token of theirs can live; the
 * gateway refuses tokens of a marked session. On Redis, or the SQLite cache of one machine, every process sees
 * the mark.
 */
export interface SessionRevocations {
  /** Marks sessions revoked for `ttlSeconds` (the access-token lifetime and its clock tolerance). */
  revoke(sessionIds: readonly string[], ttlSeconds: number): Promise<void>;
  isRevoked(sessionId: string): Promise<boolean>;
}

export function sessionRevocations(cache: Cache): SessionRevocations {
  return {
    async revoke(sessionIds, ttlSeconds) {
      await Promise.all(sessionIds.map((id) => cache.set(`${REVOKED_SESSION_KEY}${id}`, '1', ttlSeconds)));
    },
    async isRevoked(sessionId) {
      return (await cache.get(`${REVOKED_SESSION_KEY}${sessionId}`)) !== null;
    },
  };
}

/**
 * A verifier that also refuses access tokens of revoked sessions (UNAUTHENTICATED, like any invalid token).
 * Service tokens have no session. When the cache cannot be read the token is accepted — it is still signed and
 * short-lived — so an unreachable cache does not sign everyone out: the lookup is bounded by the cache's own
 * deadline (REDIS_COMMAND_TIMEOUT_MS on Redis, and immediate while Redis is disconnected). Such requests are
 * counted on `health` (`session_revocations`); a warning is logged when lookups start failing and a line when
 * they work again, not one per request.
 */
export function revocationAwareVerifier(
  verifier: AccessTokenVerifier,
  revocations: SessionRevocations,
  logger?: Logger,
  health?: DependencyReporter,
): AccessTokenVerifier {
  let failing = false;
  return {
    async verify(token) {
      const viewer = await verifier.verify(token);
      if (viewer.kind !== 'user') return viewer;
      let revoked = false;
      try {
        revoked = await revocations.isRevoked(viewer.sessionId);
        if (failing) {
          failing = false;
          logger?.info('session revocations are checked again');
        }
      } catch (error) {
        health?.degraded('session_revocations');
        if (!failing) {
          failing = true;
          logger?.warn(
            { err: (error as Error).message },
            'cannot check session revocations: tokens are accepted until the cache answers',
          );
        }
      }
      if (revoked) throw unauthenticated('Invalid or expired access token');
      return viewer;
    },
  };
}
