import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { revocationAwareVerifier, sessionRevocations } from '../src/auth/session-revocations.js';
import { createLocalVerifier, createVerifier, InvalidTokenError } from '../src/auth/verifier.js';
import { createMemoryCache } from '../src/cache/memory.js';
import { createTestTokenIssuer, TEST_AUDIENCE, TEST_ISSUER } from '../src/testing/tokens.js';

// The verified-token cache: a token seen again skips the signature check (no key lookup), until its `exp` only.
// Key lookups are counted through the key function every signature check goes through.

const issuer = await createTestTokenIssuer('cache-key');
const OPTIONS = { issuer: TEST_ISSUER, audience: TEST_AUDIENCE };

/** A key function over the issuer's key that counts the signature checks. */
function countingKeys(): { getKey: JWTVerifyGetKey; lookups: () => number } {
  const keySet = createLocalJWKSet({ keys: [issuer.publicJwk] });
  let lookups = 0;
  return {
    getKey: (header, token) => {
      lookups++;
      return keySet(header, token);
    },
    lookups: () => lookups,
  };
}

async function reasonOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return error instanceof InvalidTokenError ? error.reason : String(error);
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe('verified-token cache', () => {
  it('verifies a repeated token once', async () => {
    const keys = countingKeys();
    const verifier = createVerifier(keys.getKey, OPTIONS);
    const token = await issuer.token('user-a', { sid: 'session-a', roles: ['user', 'admin'] });
    for (let i = 0; i < 3; i++) {
      await expect(verifier.verify(token)).resolves.toEqual({
        userId: 'user-a',
        sessionId: 'session-a',
        roles: ['user', 'admin'],
        kind: 'user',
      });
    }
    expect(keys.lookups()).toBe(1);
  });

  it('does not answer a different token from the cache', async () => {
    const keys = countingKeys();
    const verifier = createVerifier(keys.getKey, OPTIONS);
    const first = await issuer.token('user-a');
    await verifier.verify(first);
    await expect(verifier.verify(await issuer.token('user-b'))).resolves.toMatchObject({ userId: 'user-b' });
    expect(keys.lookups()).toBe(2);
    // A token that differs in its signature only is checked, and refused, every time: refusals are not kept.
    const tampered = `${first.slice(0, -4)}AAAA`;
    expect(await reasonOf(verifier.inspect(tampered))).toBe('signature');
    expect(await reasonOf(verifier.inspect(tampered))).toBe('signature');
    expect(keys.lookups()).toBe(4);
    await expect(verifier.verify(first)).resolves.toMatchObject({ userId: 'user-a' });
    expect(keys.lookups()).toBe(4);
  });

  it('keeps a token until its exp only, and refuses it once expired', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = Date.parse('2026-01-01T00:00:00Z');
    vi.setSystemTime(start);
    const keys = countingKeys();
    const verifier = createVerifier(keys.getKey, OPTIONS);
    const token = await issuer.token('user-a', { expiresIn: '60s' });
    await verifier.verify(token);
    vi.setSystemTime(start + 59_000);
    await verifier.verify(token);
    expect(keys.lookups()).toBe(1);
    // Past exp (within the 30 s clock tolerance): not served from the cache, verified in full (and accepted).
    vi.setSystemTime(start + 61_000);
    await expect(verifier.verify(token)).resolves.toMatchObject({ userId: 'user-a' });
    expect(keys.lookups()).toBe(2);
    // Past the tolerance: refused, as it was cached before.
    vi.setSystemTime(start + 91_000);
    expect(await reasonOf(verifier.inspect(token))).toBe('expired');
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('is bounded: past cacheSize the oldest token goes', async () => {
    const keys = countingKeys();
    const verifier = createVerifier(keys.getKey, { ...OPTIONS, cacheSize: 2 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((sub) => issuer.token(sub)));
    for (const token of [a, b, c]) await verifier.verify(token as string);
    expect(keys.lookups()).toBe(3);
    await verifier.verify(c as string);
    await verifier.verify(b as string);
    expect(keys.lookups()).toBe(3);
    // `a` was evicted when `c` came in.
    await expect(verifier.verify(a as string)).resolves.toMatchObject({ userId: 'a' });
    expect(keys.lookups()).toBe(4);
  });

  it('verifies in full again when the keys can no longer vouch for remembered tokens', async () => {
    const keys = countingKeys();
    let usable = true;
    const verifier = createVerifier(keys.getKey, OPTIONS, () => usable);
    const token = await issuer.token('user-a');
    await verifier.verify(token);
    await verifier.verify(token);
    expect(keys.lookups()).toBe(1);
    usable = false;
    await verifier.verify(token);
    expect(keys.lookups()).toBe(2);
  });

  it('is off for the local verifier (auth refuses the tokens of a dropped key at once)', async () => {
    let reads = 0;
    const verifier = createLocalVerifier({
      ...OPTIONS,
      keys: () => {
        reads++;
        return { keys: [issuer.publicJwk] };
      },
    });
    const token = await issuer.token('user-a');
    await verifier.verify(token);
    await verifier.verify(token);
    expect(reads).toBe(2);
  });

  it('still checks the session for revocation on every request', async () => {
    const keys = countingKeys();
    const revocations = sessionRevocations(createMemoryCache());
    let lookups = 0;
    const verifier = revocationAwareVerifier(createVerifier(keys.getKey, OPTIONS), {
      revoke: revocations.revoke,
      isRevoked: (sessionId) => {
        lookups++;
        return revocations.isRevoked(sessionId);
      },
    });
    const token = await issuer.token('user-a', { sid: 'session-a' });
    await expect(verifier.verify(token)).resolves.toMatchObject({ sessionId: 'session-a' });
    await revocations.revoke(['session-a'], 60);
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    // One signature check, one revocation lookup per request.
    expect(keys.lookups()).toBe(1);
    expect(lookups).toBe(2);
  });
});
