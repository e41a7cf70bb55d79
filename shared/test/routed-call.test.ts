import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoutingTable } from '../src/discovery/protocol.js';
import { routedCall, ServiceUnavailableError } from '../src/discovery/routed-call.js';
import { ServiceRouter } from '../src/discovery/service-router.js';

/** A real HTTP server answering `ok` (or hanging, or 503) so the attempts go over real sockets. */
let server: Server;
let live: string;
let hangs = false;
let refuses = false;
const hits: string[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    hits.push(request.url ?? '');
    if (hangs) return; // never answers
    response.writeHead(refuses ? 503 : 200, { 'content-type': 'text/plain' }).end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  live = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** A closed port: connecting is refused. */
async function deadUrl(): Promise<string> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
  await new Promise((resolve) => probe.close(resolve));
  return url;
}

function routerOver(urls: string[]): ServiceRouter {
  const table: RoutingTable = {
    etag: 'x',
    generatedAt: new Date().toISOString(),
    supergraph: null,
    routes: [],
    services: {
      users: { instances: urls.map((url, i) => ({ id: `i${i}`, url, graphqlUrl: `${url}/graphql` })) },
    },
  };
  return new ServiceRouter({ routing: { current: () => table, onChange: () => () => {} } });
}

const attempt = async (endpoint: { graphqlUrl: string }, signal: AbortSignal) => {
  const response = await fetch(endpoint.graphqlUrl, { signal });
  return {
    value: await response.text(),
    outcome: response.ok ? ('success' as const) : ('error' as const),
    refused: response.status === 503,
  };
};

describe('routedCall', () => {
  it('sends a retryable request that could not connect once more, to another instance', async () => {
    const dead = await deadUrl();
    const router = routerOver([dead, live]);
    for (let i = 0; i < 10; i++) {
      // Whichever instance is picked first, the answer comes from the live one.
      await expect(routedCall(router, 'users', { retryable: true, timeoutMs: 2000 }, attempt)).resolves.toBe(
        'ok',
      );
    }
    const failures = router.takeTraffic().find((t) => t.instanceId === 'i0');
    expect(failures?.connectionFailures).toBeGreaterThan(0);
  });

  it('never sends a non-retryable request twice', async () => {
    const dead = await deadUrl();
    const router = routerOver([dead]);
    let attempts = 0;
    await expect(
      routedCall(router, 'users', { retryable: false, timeoutMs: 2000 }, (endpoint, signal) => {
        attempts++;
        return attempt(endpoint, signal);
      }),
    ).rejects.toMatchObject({ name: 'ServiceUnavailableError', reason: 'connection' });
    expect(attempts).toBe(1);
  });

  it('does not repeat a request that timed out (it may still be running)', async () => {
    hangs = true;
    try {
      const router = routerOver([live, live.replace('127.0.0.1', 'localhost')]);
      const before = hits.length;
      const error = await routedCall(router, 'users', { retryable: true, timeoutMs: 200 }, attempt).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ServiceUnavailableError);
      expect((error as ServiceUnavailableError).reason).toBe('timeout');
      expect(hits.length - before).toBe(1);
    } finally {
      hangs = false;
    }
  });

  it('tries another instance when one refuses the work with 503', async () => {
    const other = createServer((_request, response) => response.end('other'));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    refuses = true;
    try {
      const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
      const router = routerOver([live, otherUrl]);
      for (let i = 0; i < 5; i++) {
        await expect(
          routedCall(router, 'users', { retryable: true, timeoutMs: 2000 }, attempt),
        ).resolves.toBe('other');
      }
    } finally {
      refuses = false;
      other.closeAllConnections();
      await new Promise((resolve) => other.close(resolve));
    }
  });

  it('fails with no_instance when the service has none', async () => {
    await expect(
      routedCall(routerOver([]), 'users', { retryable: true, timeoutMs: 100 }, attempt),
    ).rejects.toMatchObject({ reason: 'no_instance' });
  });
});
