import { z } from 'zod';

/** Variables every service that verifies access tokens reads. */
export const tokenEnvSchema = z.object({
  AUTH_ISSUER: z.string().default('aiva-auth'),
  AUTH_AUDIENCE: z.string().default('aiva'),
  /** Where the public keys are published (auth's JWKS endpoint). */
  AUTH_JWKS_URL: z.string().url().default('http://127.0.0.1:3002/.well-known/jwks.json'),
});
export type TokenEnv = z.infer<typeof tokenEnvSchema>;
