import { z } from 'zod';
import { env } from '../config.js';
import type { RemoteVerifierOptions } from './verifier.js';

/** Variables every service that verifies access tokens reads. */
export const tokenEnvSchema = z.object({
  AUTH_ISSUER: z.string().default('aiva-auth'),
  AUTH_AUDIENCE: z.string().default('aiva'),
  /** Where the public keys are published (auth's JWKS endpoint). */
  AUTH_JWKS_URL: z.string().url().default('http://127.0.0.1:3002/.well-known/jwks.json'),
  /** Deadline of one JWKS fetch, in ms. */
  JWKS_TIMEOUT_MS: env.positiveInt(5_000),
  /** Keys fetched longer ago than this are fetched again (in the background, while they keep verifying). */
  JWKS_REFRESH_SECONDS: env.positiveInt(10 * 60),
  /**
   * How long the last good keys keep verifying while auth cannot be reached; past it (or with no keys ever
   * fetched) tokens are refused with HTTP 503 `AUTH_KEYS_UNAVAILABLE`, never 401.
   */
  JWKS_MAX_STALE_SECONDS: env.positiveInt(24 * 60 * 60),
});
export type TokenEnv = z.infer<typeof tokenEnvSchema>;

/** The remote verifier's settings of a service's configuration (`createRemoteVerifier({ ...these, health })`). */
export function remoteVerifierOptionsOf(config: TokenEnv): RemoteVerifierOptions {
  return {
    jwksUrl: config.AUTH_JWKS_URL,
    issuer: config.AUTH_ISSUER,
    audience: config.AUTH_AUDIENCE,
    timeoutMs: config.JWKS_TIMEOUT_MS,
    refreshSeconds: config.JWKS_REFRESH_SECONDS,
    maxStaleSeconds: config.JWKS_MAX_STALE_SECONDS,
  };
}
