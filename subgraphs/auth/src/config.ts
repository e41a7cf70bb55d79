import { commonEnvSchema, env, mongoEnvSchema, sealingEnvSchema, tokenEnvSchema } from '@aiva/shared';
import { z } from 'zod';

export const authEnvSchema = commonEnvSchema
  .extend(tokenEnvSchema.shape)
  .extend(mongoEnvSchema.shape)
  .extend(sealingEnvSchema.shape)
  .extend({
    AUTH_PORT: env.port(3002),
    /** SQLite file of accounts, tokens and (without REDIS_URL) sessions; default `<DATA_DIR>/auth.sqlite`. */
    AUTH_DB_FILE: z.string().optional(),
    /** Signing keys (private!), written with mode 0600; default `<DATA_DIR>/auth-keys.json`. */
    AUTH_KEYS_FILE: z.string().optional(),
    /**
     * The secret other services' credentials derive from (POST /oauth/token checks them); at least 32 characters.
     * Only auth should hold it in production. Unset: `<DATA_DIR>/service-secret.json` (created on first start).
     */
    SERVICE_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    MONGODB_URL: env.url(['mongodb', 'mongodb+srv']).optional(),
    ACCESS_TOKEN_TTL_SECONDS: env.positiveInt(15 * 60),
    REFRESH_TOKEN_TTL_DAYS: env.positiveInt(30),
    /** A new signing key after this many days; the old one keeps verifying until its tokens expired. */
    AUTH_KEY_ROTATION_DAYS: env.positiveInt(30),
    /**
     * Accounts with one of these emails get the admin role (bootstrap) once they proved they own the address:
     * when the email is verified (verifyEmail, a password reset, or a confirmed email change) — never at sign-up.
     */
    AIVA_ADMIN_EMAILS: env.list(''),
    /** Prefix of auth's keys in Redis (sessions, sign-in counters), so several deployments can share one Redis. */
    AUTH_REDIS_PREFIX: z.string().default('aiva:auth:'),
    /**
     * Sign-in attempts allowed per account (by email, known or not) and per client IP within the window. Each
     * attempt is reserved before the password is checked; a successful one is given back, a failed one counts.
     */
    SIGNIN_MAX_FAILURES_PER_ACCOUNT: env.positiveInt(5),
    SIGNIN_MAX_FAILURES_PER_IP: env.positiveInt(20),
    SIGNIN_FAILURE_WINDOW_SECONDS: env.positiveInt(15 * 60),
    /**
     * Budget of each abuse-prone request (signUp, requestPasswordReset, requestEmailVerification,
     * requestEmailChange, each counted on its own): per email (known or not; for email changes also per account)
     * and per client address, within the window. Past it: RATE_LIMITED with `retryAfter`.
     */
    AUTH_REQUESTS_PER_EMAIL: env.positiveInt(5),
    AUTH_REQUESTS_PER_ADDRESS: env.positiveInt(20),
    AUTH_REQUEST_WINDOW_SECONDS: env.positiveInt(60 * 60),
    /** Active sessions per person; starting one more ends the oldest (its access tokens are refused at once). */
    AUTH_MAX_SESSIONS_PER_USER: env.positiveInt(20),
    /**
     * The undo of a half-done sign-up (the profile whose account could not be stored) is retried until users
     * confirms it: first after this many seconds, then with doubling delays up to an hour.
     */
    AUTH_PROFILE_REMOVAL_RETRY_SECONDS: env.positiveInt(30),
    /** Proxies (the gateway) whose X-Forwarded-For names the client; comma-separated addresses or CIDRs. */
    AUTH_TRUST_PROXY: env.list('127.0.0.1,::1'),
    PASSWORD_RESET_TTL_MINUTES: env.positiveInt(60),
    EMAIL_VERIFICATION_TTL_HOURS: env.positiveInt(48),
    /** How long the link confirming a new email address stays valid. */
    EMAIL_CHANGE_TTL_HOURS: env.positiveInt(24),
  });
export type AuthConfig = z.infer<typeof authEnvSchema>;
