import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AivaError,
  createMemoryBus,
  createServiceTokenSource,
  loadConfig,
  ServiceRouter,
  serviceCredential,
} from '@aiva/shared';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AuthApp, authEnvSchema, createAuthApp } from '../src/index.js';

// @aiva/shared's service token source against auth's real token endpoint, through a ServiceRouter with a static
// endpoint: a counting HTTP relay in front of auth shows which calls reached it.

const SECRET = randomBytes(32).toString('base64url');

let dataDir: string;
let app: AuthApp;
let authUrl: string;
let relay: Server;
let relayUrl: string;
/** Requests the relay passed to auth. */
let requests: string[];
/** Delay before the relay forwards a request (ms). */
let delayMs: number;
/** The relay answers this status itself instead of forwarding, when set. */
let answerWith: number | undefined;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'aiva-token-source-'));
  app = await createAuthApp({
    config: loadConfig(authEnvSchema, {
      DATA_DIR: dataDir,
      AUTH_PORT: '0',
      LOG_LEVEL: 'silent',
      SERVICE_SECRET: SECRET,
    }),
    bus: createMemoryBus(),
    discovery: false,
    subgraphUrls: () => ({ users: 'http://127.0.0.1:9/graphql' }),
  });
  authUrl = await app.listen();
  const target = new URL(authUrl);
  relay = createServer((incoming, outgoing) => {
    requests.push(`${incoming.method} ${incoming.url}`);
    setTimeout(() => {
      if (answerWith !== undefined) {
        outgoing.writeHead(answerWith, { 'content-type': 'application/json' }).end('{"error":"relay"}');
        return;
      }
      const forwarded = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          method: incoming.method,
          path: incoming.url,
          headers: incoming.headers,
        },
        (answer) => {
          outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(outgoing);
        },
      );
      forwarded.on('error', () => outgoing.destroy());
      incoming.pipe(forwarded);
    }, delayMs);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => relay?.close(resolve));
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

beforeEach(() => {
  requests = [];
  delayMs = 0;
  answerWith = undefined;
});

/** A router whose only auth instance is the relay (the static routing URL of a supergraph). */
const routerTo = (base: string) => new ServiceRouter({ fallback: { auth: `${base}/graphql` } });

function source(options: { credential?: string; now?: () => number; router?: ServiceRouter } = {}) {
  return createServiceTokenSource({
    service: 'ai',
    credential: options.credential ?? serviceCredential(SECRET, 'ai'),
    router: options.router ?? routerTo(relayUrl),
    ...(options.now ? { now: options.now } : {}),
  });
}

describe('createServiceTokenSource', () => {
  it("gets a service:ai token from auth's /oauth/token and caches it", async () => {
    const tokens = source();
    const first = await tokens.token();
    const viewer = await app.verifier.verify(first);
    expect(viewer).toMatchObject({ userId: 'service:ai', roles: ['service'], kind: 'service' });
    expect(requests).toEqual(['POST /oauth/token']);
    expect(await tokens.token()).toBe(first);
    expect(await tokens.token()).toBe(first);
    expect(requests).toHaveLength(1);
  });

  it('asks for a new token 60 s before the cached one expires', async () => {
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const tokens = source({ now: () => clock });
    const first = await tokens.token();
    expect(requests).toHaveLength(1);
    // expires_in 300: kept until 240 s after it was asked for.
    clock += 239_000;
    expect(await tokens.token()).toBe(first);
    expect(requests).toHaveLength(1);
    clock += 2_000;
    const second = await tokens.token();
    expect(requests).toHaveLength(2);
    expect(second).not.toBe(first);
    expect(await tokens.token()).toBe(second);
    expect(requests).toHaveLength(2);
  });

  it('sends one request for concurrent callers (single flight)', async () => {
    delayMs = 50;
    const tokens = source();
    const [a, b, c] = await Promise.all([tokens.token(), tokens.token(), tokens.token()]);
    expect(requests).toHaveLength(1);
    expect(a).toBe(b);
    expect(b).toBe(c);
  });

  it("lets one caller give up without failing the others' shared request", async () => {
    delayMs = 100;
    const tokens = source();
    const controller = new AbortController();
    const abandoned = tokens.token(controller.signal);
    const kept = tokens.token();
    controller.abort(new Error('caller gone'));
    await expect(abandoned).rejects.toThrow('caller gone');
    await expect(kept).resolves.toEqual(expect.any(String));
    expect(requests).toHaveLength(1);
    // The shared answer was cached.
    await tokens.token();
    expect(requests).toHaveLength(1);
  });

  it('reports a refused credential naming SERVICE_CREDENTIAL, never its value, and caches nothing', async () => {
    const wrong = randomBytes(32).toString('base64url');
    const tokens = source({ credential: wrong });
    const error = await tokens.token().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AivaError);
    expect((error as AivaError).code).toBe('INTERNAL_SERVER_ERROR');
    expect((error as AivaError).message).toContain("This service's credential was refused by auth");
    expect((error as AivaError).message).toContain('SERVICE_CREDENTIAL');
    expect(
      JSON.stringify({ message: (error as Error).message, ...(error as AivaError).extensions }),
    ).not.toContain(wrong);
    expect(requests).toHaveLength(1);
    // Not retried on another instance, not cached: the next call asks again.
    await tokens.token().catch(() => {});
    expect(requests).toHaveLength(2);
  });

  it('reports auth unreachable or failing as "The auth service is unavailable"', async () => {
    // Nothing listens there.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const down = await source({ router: routerTo(`http://127.0.0.1:${port}`) })
      .token()
      .catch((e: unknown) => e);
    expect(down).toBeInstanceOf(AivaError);
    expect((down as AivaError).message).toBe('The auth service is unavailable');
    expect((down as AivaError).extensions.serviceName).toBe('auth');
    // No instance of auth known at all.
    const none = await source({ router: new ServiceRouter() })
      .token()
      .catch((e: unknown) => e);
    expect((none as AivaError).message).toBe('The auth service is unavailable');
    // auth answers 500.
    answerWith = 500;
    const failing = source();
    const failed = await failing.token().catch((e: unknown) => e);
    expect((failed as AivaError).message).toBe('The auth service is unavailable');
    // Recovered: the next call gets a token.
    answerWith = undefined;
    await expect(failing.token()).resolves.toEqual(expect.any(String));
  });

  it('refuses to be made for a malformed service name', () => {
    expect(() =>
      createServiceTokenSource({ service: 'Not A Service', credential: 'x', router: routerTo(relayUrl) }),
    ).toThrow(RangeError);
  });
});
