import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import { createLocalVerifier } from '../auth/verifier.js';
import { ACCESS_TOKEN_TYPE, ROLE_ADMIN, ROLE_SERVICE, ROLE_USER } from '../auth/viewer.js';

export const TEST_ISSUER = 'aiva-auth';
export const TEST_AUDIENCE = 'aiva';

export interface TestTokenIssuer {
  /** A valid access token for `sub` (default roles: user). */
  token(
    sub: string,
    options?: { roles?: string[]; sid?: string; expiresIn?: string | number },
  ): Promise<string>;
  adminToken(sub?: string): Promise<string>;
  serviceToken(name?: string): Promise<string>;
  /** Signs arbitrary claims/header with the issuer's private key (for attack tests). */
  sign(payload: JWTPayload, header?: Record<string, unknown>): Promise<string>;
  publicJwk: JWK;
  verifier: ReturnType<typeof createLocalVerifier>;
}

/** An Ed25519 key pair and helpers to mint access tokens the way auth does, for tests of other services. */
export async function createTestTokenIssuer(kid = 'test-key'): Promise<TestTokenIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
  const sign = (payload: JWTPayload, header: Record<string, unknown> = {}) =>
    new SignJWT(payload)
      .setProtectedHeader({ alg: 'EdDSA', typ: ACCESS_TOKEN_TYPE, kid, ...header })
      .sign(privateKey);
  const token: TestTokenIssuer['token'] = (sub, options = {}) =>
    new SignJWT({ sid: options.sid ?? 'test-session', roles: options.roles ?? [ROLE_USER] })
      .setProtectedHeader({ alg: 'EdDSA', typ: ACCESS_TOKEN_TYPE, kid })
      .setSubject(sub)
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(options.expiresIn ?? '15m')
      .sign(privateKey);
  return {
    token,
    adminToken: (sub = '01890000-0000-7000-8000-0000000000ad') =>
      token(sub, { roles: [ROLE_USER, ROLE_ADMIN] }),
    serviceToken: (name = 'test') => token(`service:${name}`, { roles: [ROLE_SERVICE], sid: 'service' }),
    sign,
    publicJwk,
    verifier: createLocalVerifier({
      issuer: TEST_ISSUER,
      audience: TEST_AUDIENCE,
      keys: () => ({ keys: [publicJwk] }),
    }),
  };
}
