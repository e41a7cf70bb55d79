import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import { unauthenticated } from '../errors.js';
import { ACCESS_TOKEN_ALGORITHMS, ACCESS_TOKEN_TYPE, SERVICE_SUBJECT_PREFIX, type Viewer } from './viewer.js';

export interface AccessTokenVerifier {
  /** The viewer of a valid access token; UNAUTHENTICATED (never details) for anything else. */
  verify(token: string): Promise<Viewer>;
}

export interface VerifierOptions {
  issuer: string;
  audience: string;
}

/** Reasons a token was refused, for logs and tests (clients only ever see "Invalid or expired access token"). */
export type RejectionReason = 'expired' | 'signature' | 'claims' | 'algorithm' | 'malformed' | 'unknown_key';

export class InvalidTokenError extends Error {
  constructor(readonly reason: RejectionReason) {
    super(`access token rejected: ${reason}`);
  }
}

function reasonOf(error: unknown): RejectionReason {
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return 'claims';
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'unknown_key';
  return 'malformed';
}

const rolesOf = (value: unknown): string[] =>
  Array.isArray(value) && value.every((r) => typeof r === 'string') ? value : [];

/**
 * Verifies access tokens with an explicit algorithm allowlist (EdDSA), `typ: at+jwt`, issuer, audience,
 * expiry (30 s clock tolerance) and the claims AIVA needs (`sub`, `sid`, `roles`).
 */
export function createVerifier(
  getKey: JWTVerifyGetKey,
  options: VerifierOptions,
): AccessTokenVerifier & {
  /** Like verify, but rejects with InvalidTokenError carrying the reason. */
  inspect(token: string): Promise<Viewer>;
} {
  const inspect = async (token: string): Promise<Viewer> => {
    try {
      const { payload } = await jwtVerify(token, getKey, {
        algorithms: [...ACCESS_TOKEN_ALGORITHMS],
        issuer: options.issuer,
        audience: options.audience,
        typ: ACCESS_TOKEN_TYPE,
        requiredClaims: ['sub', 'sid', 'exp', 'iat'],
        clockTolerance: 30,
      });
      const sub = String(payload.sub);
      return {
        userId: sub,
        sessionId: String(payload.sid),
        roles: rolesOf(payload.roles),
        kind: sub.startsWith(SERVICE_SUBJECT_PREFIX) ? 'service' : 'user',
      };
    } catch (error) {
      throw new InvalidTokenError(reasonOf(error));
    }
  };
  return {
    inspect,
    async verify(token) {
      try {
        return await inspect(token);
      } catch {
        throw unauthenticated('Invalid or expired access token');
      }
    },
  };
}

/**
 * A verifier that fetches the JWKS from auth (`/.well-known/jwks.json`), caches it, and refetches when a token
 * names an unknown `kid` (at most every 30 s), so rotated keys are picked up without a restart.
 */
export function createRemoteVerifier(
  options: VerifierOptions & { jwksUrl: string; forcedReloadIntervalMs?: number },
) {
  const jwks = createRemoteJWKSet(new URL(options.jwksUrl), {
    cooldownDuration: 30_000,
    cacheMaxAge: 10 * 60_000,
    timeoutDuration: 5_000,
  });
  // jose refetches on an unknown `kid` only outside its 30 s cooldown. A key that auth starts using right after a
  // fetch would then be refused for up to 30 s; so an unknown `kid` during the cooldown forces one reload, at most
  // once per `forcedReloadIntervalMs`, and the key is looked up again.
  const interval = options.forcedReloadIntervalMs ?? 1_000;
  let lastForcedReload = 0;
  const getKey: JWTVerifyGetKey = async (header, token) => {
    try {
      return await jwks(header, token);
    } catch (error) {
      const now = Date.now();
      if (
        !(error instanceof joseErrors.JWKSNoMatchingKey) ||
        !jwks.coolingDown ||
        now - lastForcedReload < interval
      ) {
        throw error;
      }
      lastForcedReload = now;
      await jwks.reload();
      return jwks(header, token);
    }
  };
  return createVerifier(getKey, options);
}

/** A verifier over a key set held in memory (auth itself, tests). `keys` is read on every verification. */
export function createLocalVerifier(options: VerifierOptions & { keys: () => JSONWebKeySet }) {
  return createVerifier((header, token) => createLocalJWKSet(options.keys())(header, token), options);
}

/** `Bearer <token>` → token; undefined for no header; UNAUTHENTICATED for any other scheme or shape. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined || header === '') return undefined;
  const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/.exec(header.trim());
  if (!match?.[1]) throw unauthenticated('Authorization must be "Bearer <access token>"');
  return match[1];
}
