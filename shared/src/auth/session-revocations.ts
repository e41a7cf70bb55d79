import type { Cache } from '../cache/cache.js';
import { unauthenticated } from '../errors.js';
import type { Logger } from '../log.js';
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
 * short-lived — and the failure is logged: an unreachable cache must not sign everyone out.
 */
export function revocationAwareVerifier(
  verifier: AccessTokenVerifier,
  revocations: SessionRevocations,
  logger?: Logger,
): AccessTokenVerifier {
  return {
    async verify(token) {
      const viewer = await verifier.verify(token);
      if (viewer.kind !== 'user') return viewer;
      let revoked = false;
      try {
        revoked = await revocations.isRevoked(viewer.sessionId);
      } catch (error) {
        logger?.warn({ err: (error as Error).message }, 'cannot check session revocations: token accepted');
      }
      if (revoked) throw unauthenticated('Invalid or expired access token');
      return viewer;
    },
  };
}
