import {
  createLocalJWKSet,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import { AivaError, unauthenticated } from '../errors.js';
import type { DependencyReporter } from '../server/dependencies.js';
import { ACCESS_TOKEN_ALGORITHMS, ACCESS_TOKEN_TYPE, SERVICE_SUBJECT_PREFIX, type Viewer } from './viewer.js';

export interface AccessTokenVerifier {
  /**
   * The viewer of a valid access token; UNAUTHENTICATED (never details) for anything else, except a token that
   * cannot be checked because no keys are usable: INTERNAL_SERVER_ERROR with `reason: AUTH_KEYS_UNAVAILABLE`.
   */
  verify(token: string): Promise<Viewer>;
}

export interface VerifierOptions {
  issuer: string;
  audience: string;
  /**
   * How many verified tokens are remembered, each until its `exp` (default 10,000; 0 turns the cache off): a
   * token seen again is not verified again (no signature check, no key lookup).
   */
  cacheSize?: number;
}

/** Default bound of the verified-token cache (`cacheSize`). */
export const DEFAULT_VERIFIED_TOKEN_CACHE_SIZE = 10_000;

/**
 * Tokens that passed verification, each with its viewer until the token's `exp` (never longer: an expired token
 * is verified again, and refused). Bounded: past `maxEntries` the oldest entry goes first (insertion order, which
 * is close to expiry order as every token lives as long). Only successes are kept; a refused token is checked
 * again each time.
 */
function verifiedTokenCache(maxEntries: number) {
  const entries = new Map<string, { viewer: Viewer; expiresAt: number }>();
  return {
    get(token: string): Viewer | undefined {
      const entry = entries.get(token);
      if (!entry) return undefined;
      if (Date.now() >= entry.expiresAt) {
        entries.delete(token);
        return undefined;
      }
      return entry.viewer;
    },
    set(token: string, viewer: Viewer, exp: number): void {
      if (maxEntries <= 0) return;
      const expiresAt = exp * 1000;
      if (Date.now() >= expiresAt) return;
      if (entries.size >= maxEntries && !entries.has(token)) {
        const oldest = entries.keys().next().value;
        if (oldest !== undefined) entries.delete(oldest);
      }
      entries.set(token, { viewer, expiresAt });
    },
  };
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
 *
 * A verified token is remembered until its `exp` (bounded by `cacheSize`), so the same token on the next
 * request skips the signature check (the largest cost of a request at the gateway). That is all it skips: the
 * cache holds what the token itself proves, so checks that can change while a token lives — a revoked session
 * (`revocationAwareVerifier`, which wraps this verifier) — still run on every request. A token stays accepted
 * until its `exp` even if the key that signed it leaves the key set meanwhile, as it would on the keys in hand
 * between two JWKS refreshes; keys too old to use (`cachedKeysUsable`) vouch for no token, remembered or not.
 */
export function createVerifier(
  getKey: JWTVerifyGetKey,
  options: VerifierOptions,
  /**
   * Asked before a remembered token is accepted; false verifies it in full again. The remote key set answers
   * false once its keys are too old to use, and does what a key lookup does for the keys' freshness (a due
   * refresh, the count of verifications done with stale keys).
   */
  cachedKeysUsable: () => boolean = () => true,
): AccessTokenVerifier & {
  /** Like verify, but rejects with InvalidTokenError carrying the reason. */
  inspect(token: string): Promise<Viewer>;
} {
  const cache = verifiedTokenCache(options.cacheSize ?? DEFAULT_VERIFIED_TOKEN_CACHE_SIZE);
  const inspect = async (token: string): Promise<Viewer> => {
    const known = cache.get(token);
    if (known && cachedKeysUsable()) return known;
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
      // Frozen: the same viewer answers every request with this token.
      const viewer: Viewer = Object.freeze({
        userId: sub,
        sessionId: String(payload.sid),
        roles: Object.freeze(rolesOf(payload.roles)),
        kind: sub.startsWith(SERVICE_SUBJECT_PREFIX) ? 'service' : 'user',
      });
      // `exp` is a required claim, a number once jose accepted the token.
      if (typeof payload.exp === 'number') cache.set(token, viewer, payload.exp);
      return viewer;
    } catch (error) {
      if (error instanceof KeysUnavailableError) throw error;
      throw new InvalidTokenError(reasonOf(error));
    }
  };
  return {
    inspect,
    async verify(token) {
      try {
        return await inspect(token);
      } catch (error) {
        // A token that cannot be checked is not a bad token: 503, so the client keeps its session.
        if (error instanceof KeysUnavailableError) throw authKeysUnavailable();
        throw unauthenticated('Invalid or expired access token');
      }
    },
  };
}

/** Defaults of the remote verifier (JWKS_TIMEOUT_MS, JWKS_REFRESH_SECONDS, JWKS_MAX_STALE_SECONDS). */
export const DEFAULT_JWKS_TIMEOUT_MS = 5_000;
export const DEFAULT_JWKS_REFRESH_SECONDS = 10 * 60;
export const DEFAULT_JWKS_MAX_STALE_SECONDS = 24 * 60 * 60;

export interface RemoteVerifierOptions extends VerifierOptions {
  jwksUrl: string;
  /** At most one reload per interval for tokens naming an unknown `kid`, and between failed fetches (1000). */
  forcedReloadIntervalMs?: number;
  /** Deadline of one JWKS fetch, in ms (default 5000). */
  timeoutMs?: number;
  /** Keys fetched longer ago than this are fetched again, in the background while they keep verifying (600). */
  refreshSeconds?: number;
  /**
   * The longest the last good keys keep verifying while auth cannot be reached (default 24 h). Past it, and when
   * no keys were ever fetched, tokens cannot be verified: HTTP 503 (`AUTH_KEYS_UNAVAILABLE`), never 401.
   */
  maxStaleSeconds?: number;
  /**
   * Where the key set's state goes (dependency `auth_keys`): down while auth cannot be reached, up once a fetch
   * succeeds; each verification done with keys that could not be refreshed counts as degraded.
   */
  health?: DependencyReporter;
  /** The clock (tests). */
  now?: () => number;
}

/** No keys can be used to verify a token: none were ever fetched, or the last ones are too old. */
export class KeysUnavailableError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('the JWKS cannot be fetched and no usable keys are known', options);
    this.name = 'KeysUnavailableError';
  }
}

/**
 * The answer to a token that cannot be checked because no keys can be used: HTTP 503 with
 * `extensions.code: INTERNAL_SERVER_ERROR` and `reason: AUTH_KEYS_UNAVAILABLE` (and `Retry-After`), so clients
 * retry instead of throwing their session away, as a 401 would make them.
 */
export function authKeysUnavailable(): AivaError {
  return new AivaError(
    'INTERNAL_SERVER_ERROR',
    'Access tokens cannot be verified right now: try again shortly',
    {
      reason: 'AUTH_KEYS_UNAVAILABLE',
      http: { status: 503, headers: new Map([['retry-after', '5']]) },
    },
  );
}

/** The error a verifier throws for a token it cannot check (keys unavailable) rather than a bad one. */
export function isKeysUnavailable(error: unknown): boolean {
  return (
    error instanceof KeysUnavailableError ||
    (error instanceof AivaError && error.extensions.reason === 'AUTH_KEYS_UNAVAILABLE')
  );
}

/**
 * The JWKS of auth (`/.well-known/jwks.json`), kept in memory and served stale when auth cannot be reached:
 * - fetched on the first token (or `prefetch()`), each fetch bounded by `timeoutMs`, one at a time;
 * - older than `refreshSeconds`: fetched again in the background while the keys in hand keep verifying;
 * - auth unreachable: the last good keys keep verifying for up to `maxStaleSeconds` (stale-if-error), the
 *   dependency is reported down once, and a fetch is tried again at most once per `forcedReloadIntervalMs`
 *   (without any usable keys, each token waits for a fetch: the one in flight, or a new one);
 * - a token naming an unknown `kid` forces a reload (at most once per `forcedReloadIntervalMs`), so rotated
 *   keys are picked up without a restart.
 */
export function createRemoteKeySet(options: RemoteVerifierOptions): {
  getKey: JWTVerifyGetKey;
  /** Fetches the keys now (once at start, so they are in hand before auth might go away). */
  prefetch(): Promise<void>;
  /** Resolves when usable keys are in hand and the last fetch succeeded; throws otherwise (`/ready` detail). */
  check(): Promise<void>;
  /**
   * For a token verified earlier (the verifier's cache): whether the keys in hand may still vouch for it — false
   * past `maxStaleSeconds` or with no keys, as `getKey` would refuse. Like `getKey`, it starts a due refresh and
   * counts the verification as degraded while the keys cannot be refreshed.
   */
  vouches(): boolean;
} {
  const now = options.now ?? Date.now;
  const url = new URL(options.jwksUrl);
  const timeoutMs = options.timeoutMs ?? DEFAULT_JWKS_TIMEOUT_MS;
  const refreshMs = (options.refreshSeconds ?? DEFAULT_JWKS_REFRESH_SECONDS) * 1000;
  const maxStaleMs = (options.maxStaleSeconds ?? DEFAULT_JWKS_MAX_STALE_SECONDS) * 1000;
  const retryMs = options.forcedReloadIntervalMs ?? 1_000;
  const health = options.health;
  let keys: { getKey: JWTVerifyGetKey; fetchedAt: number } | undefined;
  let fetching: Promise<void> | undefined;
  /** When the last fetch started, and whether it failed. */
  let lastAttempt = Number.NEGATIVE_INFINITY;
  let lastFailed = false;
  let lastForcedReload = Number.NEGATIVE_INFINITY;

  function fetchKeys(): Promise<void> {
    fetching ??= (async () => {
      lastAttempt = now();
      try {
        const response = await fetch(url, {
          headers: { accept: 'application/json' },
          signal: AbortSignal.timeout(timeoutMs),
        });
        if (!response.ok) throw new Error(`JWKS: HTTP ${response.status}`);
        const jwks = (await response.json()) as JSONWebKeySet;
        // Throws on anything that is not a key set: the keys in hand stay.
        const getKey = createLocalJWKSet(jwks);
        keys = { getKey, fetchedAt: now() };
        lastFailed = false;
        health?.up();
      } catch (error) {
        lastFailed = true;
        health?.down(error);
        throw error;
      }
    })().finally(() => {
      fetching = undefined;
    });
    return fetching;
  }

  /** Fetches unless a fetch failed within the retry interval; resolves either way (the outcome is in state). */
  async function tryFetch(): Promise<void> {
    if (fetching) return fetching.catch(() => undefined);
    if (lastFailed && now() - lastAttempt < retryMs) return;
    await fetchKeys().catch(() => undefined);
  }

  const usable = () => keys !== undefined && now() - keys.fetchedAt <= maxStaleMs;

  /** Keys in hand but due for a refresh: fetched again in the background (stale-while-revalidate). */
  function refreshIfDue(): void {
    if (
      now() - (keys?.fetchedAt ?? 0) > refreshMs &&
      !fetching &&
      !(lastFailed && now() - lastAttempt < retryMs)
    ) {
      fetchKeys().catch(() => undefined);
    }
  }

  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (!usable()) {
      // No keys in hand: a token waits for a fetch of its own (or the one in flight) rather than being refused
      // because a probe's fetch failed a moment ago, while auth was still starting. One fetch at a time.
      await (fetching ?? fetchKeys()).catch(() => undefined);
      if (!usable()) throw new KeysUnavailableError();
    } else {
      // Stale-while-revalidate: this token is checked with the keys in hand.
      refreshIfDue();
    }
    const inHand = keys;
    if (!inHand) throw new KeysUnavailableError();
    if (lastFailed) health?.degraded('token_verification');
    try {
      return await inHand.getKey(header, token);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error;
      // An unknown `kid`: auth may have started signing with a new key since the last fetch.
      const at = now();
      if (at - lastForcedReload < retryMs) {
        // A key that cannot be looked up while auth is unreachable may well be a new one: not the token's fault.
        if (lastFailed) throw new KeysUnavailableError({ cause: error });
        throw error;
      }
      lastForcedReload = at;
      await tryFetch();
      if (lastFailed) throw new KeysUnavailableError({ cause: error });
      const reloaded = keys;
      if (!reloaded) throw new KeysUnavailableError({ cause: error });
      return reloaded.getKey(header, token);
    }
  };

  return {
    getKey,
    async prefetch() {
      await tryFetch();
    },
    async check() {
      if (lastFailed || !usable()) await tryFetch();
      if (!usable()) throw new KeysUnavailableError();
      if (lastFailed) throw new Error('the JWKS cannot be fetched: verifying with the last good keys');
    },
    vouches() {
      if (!usable()) return false;
      refreshIfDue();
      if (lastFailed) health?.degraded('token_verification');
      return true;
    },
  };
}

/**
 * A verifier over auth's JWKS (`createRemoteKeySet`): tokens keep being verified with the last good keys while
 * auth cannot be reached (up to `maxStaleSeconds`); a token that cannot be checked because no usable keys are
 * known is refused with HTTP 503 (`authKeysUnavailable`), never 401.
 */
export function createRemoteVerifier(options: RemoteVerifierOptions & { prefetch?: boolean }) {
  const keySet = createRemoteKeySet(options);
  if (options.prefetch) void keySet.prefetch();
  return Object.assign(createVerifier(keySet.getKey, options, keySet.vouches), {
    /** For `/ready` (dependency `auth_keys`): throws while the JWKS cannot be fetched. */
    checkKeys: keySet.check,
  });
}

/**
 * A verifier over a key set held in memory (auth itself, tests). `keys` is read on every verification, and no
 * verified token is remembered unless `cacheSize` says so: auth refuses the tokens of a key it has dropped at once.
 */
export function createLocalVerifier(options: VerifierOptions & { keys: () => JSONWebKeySet }) {
  return createVerifier((header, token) => createLocalJWKSet(options.keys())(header, token), {
    ...options,
    cacheSize: options.cacheSize ?? 0,
  });
}

/** `Bearer <token>` → token; undefined for no header; UNAUTHENTICATED for any other scheme or shape. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined || header === '') return undefined;
  const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/.exec(header.trim());
  if (!match?.[1]) throw unauthenticated('Authorization must be "Bearer <access token>"');
  return match[1];
}
