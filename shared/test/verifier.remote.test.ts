import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteVerifier } from '../src/auth/verifier.js';
import { createDependencyMonitor } from '../src/server/dependencies.js';
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

  it('verifies the first token as soon as auth answers, even right after a failed fetch (auth was starting)', async () => {
    // Nothing listens on the port at first: the prefetch at start fails.
    const late = createServer((_request, response) => {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ keys: [current.publicJwk] }));
    });
    await new Promise<void>((resolve) => late.listen(0, '127.0.0.1', resolve));
    const port = (late.address() as AddressInfo).port;
    await new Promise<void>((resolve) => late.close(() => resolve()));
    const verifier = createRemoteVerifier({
      jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
      issuer: TEST_ISSUER,
      audience: TEST_AUDIENCE,
      forcedReloadIntervalMs: 60_000,
    });
    await expect(verifier.checkKeys()).rejects.toThrow();
    // Auth is up now, well within the retry interval of that failure: the token waits for a fetch of its own.
    await new Promise<void>((resolve) => late.listen(port, '127.0.0.1', resolve));
    try {
      expect((await verifier.verify(await current.token('first'))).userId).toBe('first');
    } finally {
      await new Promise<void>((resolve) => late.close(() => resolve()));
    }
  });

  describe('auth cannot be reached', () => {
    /** A verifier on a clock the test moves, whose JWKS endpoint the test can take away. */
    async function staleSetup(options: { maxStaleSeconds?: number } = {}) {
      let reachable = true;
      let clock = 1_000_000;
      const monitor = createDependencyMonitor();
      const health = monitor.reporter('auth_keys');
      const verifier = createRemoteVerifier({
        jwksUrl,
        issuer: TEST_ISSUER,
        audience: TEST_AUDIENCE,
        refreshSeconds: 10,
        maxStaleSeconds: options.maxStaleSeconds ?? 3_600,
        forcedReloadIntervalMs: 0,
        health,
        now: () => clock,
      });
      // A closed port answers a fetch with "connection refused" at once.
      const realFetch = globalThis.fetch;
      globalThis.fetch = ((input: Parameters<typeof fetch>[0], init?: RequestInit) =>
        reachable ? realFetch(input, init) : Promise.reject(new TypeError('fetch failed'))) as typeof fetch;
      return {
        verifier,
        monitor,
        setReachable: (value: boolean) => {
          reachable = value;
        },
        advance: (ms: number) => {
          clock += ms;
        },
        restore: () => {
          globalThis.fetch = realFetch;
        },
      };
    }

    it('keeps verifying with the last good keys past their refresh, and counts it', async () => {
      served = [current.publicJwk];
      const setup = await staleSetup();
      try {
        await setup.verifier.verify(await current.token('before'));
        setup.setReachable(false);
        setup.advance(60_000);
        for (let i = 0; i < 3; i++) {
          expect((await setup.verifier.verify(await current.token(`stale-${i}`))).userId).toBe(`stale-${i}`);
        }
        expect(setup.monitor.states()).toEqual({ auth_keys: 'down' });
        expect(setup.monitor.degradedCount('auth_keys', 'token_verification')).toBeGreaterThan(0);
        await expect(setup.verifier.checkKeys()).rejects.toThrow(/last good keys/);
        // Back: fresh keys, the dependency is up again.
        setup.setReachable(true);
        setup.advance(60_000);
        await setup.verifier.verify(await current.token('after'));
        await setup.verifier.checkKeys();
        expect(setup.monitor.states()).toEqual({ auth_keys: 'up' });
      } finally {
        setup.restore();
      }
    });

    it('answers 503 AUTH_KEYS_UNAVAILABLE, never 401, with no keys at all or keys older than the maximum', async () => {
      served = [current.publicJwk];
      const never = await staleSetup();
      try {
        never.setReachable(false);
        await expect(never.verifier.verify(await current.token('x'))).rejects.toMatchObject({
          code: 'INTERNAL_SERVER_ERROR',
          extensions: { reason: 'AUTH_KEYS_UNAVAILABLE', http: { status: 503 } },
        });
      } finally {
        never.restore();
      }
      const old = await staleSetup({ maxStaleSeconds: 120 });
      try {
        await old.verifier.verify(await current.token('fresh'));
        old.setReachable(false);
        old.advance(121_000);
        await expect(old.verifier.verify(await current.token('too-old'))).rejects.toMatchObject({
          extensions: { reason: 'AUTH_KEYS_UNAVAILABLE' },
        });
      } finally {
        old.restore();
      }
    });

    it('still refuses a bad token with UNAUTHENTICATED while serving stale keys', async () => {
      served = [current.publicJwk];
      const setup = await staleSetup();
      try {
        await setup.verifier.verify(await current.token('warm'));
        setup.setReachable(false);
        setup.advance(60_000);
        const token = await current.token('tampered');
        await expect(setup.verifier.verify(`${token.slice(0, -4)}AAAA`)).rejects.toMatchObject({
          code: 'UNAUTHENTICATED',
        });
      } finally {
        setup.restore();
      }
    });
  });
});
