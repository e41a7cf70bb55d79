import { describe, expect, it } from 'vitest';
import { revocationAwareVerifier, sessionRevocations } from '../src/auth/session-revocations.js';
import type { Cache } from '../src/cache/cache.js';
import { createMemoryCache } from '../src/cache/memory.js';
import { createTestTokenIssuer } from '../src/testing/tokens.js';

const tokens = await createTestTokenIssuer();
const USER = '01890000-0000-7000-8000-000000000001';

describe('session revocations', () => {
  it('refuses the access tokens of a revoked session only, for as long as the mark lives', async () => {
    const cache = createMemoryCache();
    const revocations = sessionRevocations(cache);
    const verifier = revocationAwareVerifier(tokens.verifier, revocations);
    const ended = await tokens.token(USER, { sid: 'session-ended' });
    const live = await tokens.token(USER, { sid: 'session-live' });
    await revocations.revoke(['session-ended'], 0.2);
    await expect(verifier.verify(ended)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(verifier.verify(live)).resolves.toMatchObject({ sessionId: 'session-live' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await expect(verifier.verify(ended)).resolves.toMatchObject({ sessionId: 'session-ended' });
  });

  it('does not look service tokens up, and accepts a valid token when the cache cannot be read', async () => {
    const broken = { get: async () => Promise.reject(new Error('cache down')) } as unknown as Cache;
    const verifier = revocationAwareVerifier(tokens.verifier, sessionRevocations(broken));
    await expect(verifier.verify(await tokens.token(USER))).resolves.toMatchObject({ userId: USER });
    await expect(verifier.verify(await tokens.serviceToken('auth'))).resolves.toMatchObject({
      kind: 'service',
    });
    await expect(verifier.verify('not.a.token')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });
});
