import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteVerifier } from '../src/auth/verifier.js';
import {
  createTestTokenIssuer,
  TEST_AUDIENCE,
  TEST_ISSUER,
  type TestTokenIssuer,
} from '../src/testing/tokens.js';

/** A JWKS endpoint whose keys the test changes, counting fetches. */
let served: JWK[] = [];
let fetches = 0;
let server: Server;
let jwksUrl: string;
let current: TestTokenIssuer;
let next: TestTokenIssuer;
let stranger: TestTokenIssuer;

beforeAll(async () => {
  current = await createTestTokenIssuer('key-current');
  next = await createTestTokenIssuer('key-next');
  stranger = await createTestTokenIssuer('key-stranger');
  served = [current.publicJwk];
  server = createServer((_request, response) => {
    fetches++;
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ keys: served }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('remote verifier (JWKS over HTTP)', () => {
  it('fetches the key set once and caches it', async () => {
    const verifier = createRemoteVerifier({ jwksUrl, issuer: TEST_ISSUER, audience: TEST_AUDIENCE });
    const before = fetches;
    for (let i = 0; i < 5; i++) {
      const viewer = await verifier.verify(await current.token(`user-${i}`));
      expect(viewer.userId).toBe(`user-${i}`);
    }
    expect(fetches - before).toBe(1);
  });

  it('accepts a key auth starts using right after the last fetch (rotation), without waiting out the cooldown', async () => {
    served = [current.publicJwk];
    const verifier = createRemoteVerifier({ jwksUrl, issuer: TEST_ISSUER, audience: TEST_AUDIENCE });
    await verifier.verify(await current.token('before-rotation'));
    served = [current.publicJwk, next.publicJwk];
    const viewer = await verifier.verify(await next.token('after-rotation'));
    expect(viewer.userId).toBe('after-rotation');
    // The old key still verifies: nobody is signed out by the rotation.
    expect((await verifier.verify(await current.token('old-token'))).userId).toBe('old-token');
  });

  it('bounds the reloads a flood of unknown keys can cause', async () => {
    served = [current.publicJwk];
    const verifier = createRemoteVerifier({
      jwksUrl,
      issuer: TEST_ISSUER,
      audience: TEST_AUDIENCE,
      forcedReloadIntervalMs: 60_000,
    });
    await verifier.verify(await current.token('warm'));
    const before = fetches;
    for (let i = 0; i < 10; i++) {
      await expect(verifier.inspect(await stranger.token('intruder'))).rejects.toMatchObject({
        reason: 'unknown_key',
      });
    }
    expect(fetches - before).toBe(1);
  });
});
