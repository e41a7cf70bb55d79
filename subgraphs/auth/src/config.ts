import { commonEnvSchema, env, tokenEnvSchema } from '@aiva/shared';
import { z } from 'zod';

export const authEnvSchema = commonEnvSchema.extend(tokenEnvSchema.shape).extend({
  AUTH_PORT: env.port(3002),
  /** SQLite file of accounts, tokens and (without REDIS_URL) sessions; default `<DATA_DIR>/auth.sqlite`. */
  AUTH_DB_FILE: z.string().optional(),
  /** Signing keys (private!), written with mode 0600; default `<DATA_DIR>/auth-keys.json`. */
  AUTH_KEYS_FILE: z.string().optional(),
  MONGODB_URL: env.url(['mongodb', 'mongodb+srv']).optional(),
  ACCESS_TOKEN_TTL_SECONDS: env.positiveInt(15 * 60),
  REFRESH_TOKEN_TTL_DAYS: env.positiveInt(30),
  /** A new signing key after this many days; the old one keeps verifying until its tokens expired. */
  AUTH_KEY_ROTATION_DAYS: env.positiveInt(30),
  /** Accounts signing up with one of these emails get the admin role (bootstrap). */
  AIVA_ADMIN_EMAILS: env.list(''),
  /** Prefix of auth's keys in Redis (sessions, sign-in counters), so several deployments can share one Redis. */
  AUTH_REDIS_PREFIX: z.string().default('aiva:auth:'),
  /** Failed sign-ins allowed per account, and per client IP, within the window. */
  SIGNIN_MAX_FAILURES_PER_ACCOUNT: env.positiveInt(5),
  SIGNIN_MAX_FAILURES_PER_IP: env.positiveInt(20),
  SIGNIN_FAILURE_WINDOW_SECONDS: env.positiveInt(15 * 60),
  /** Proxies (the gateway) whose X-Forwarded-For names the client; comma-separated addresses or CIDRs. */
  AUTH_TRUST_PROXY: env.list('127.0.0.1,::1'),
  PASSWORD_RESET_TTL_MINUTES: env.positiveInt(60),
  EMAIL_VERIFICATION_TTL_HOURS: env.positiveInt(48),
});
export type AuthConfig = z.infer<typeof authEnvSchema>;
