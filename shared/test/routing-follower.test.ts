import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRoutingFollower, type RoutingTable, routingDuringRebuild } from '../src/index.js';
import { waitFor } from '../src/testing/index.js';

const instance = (id: string, port: number) => ({
  id,
  url: `http://127.0.0.1:${port}`,
  graphqlUrl: `http://127.0.0.1:${port}/graphql`,
});

const table = (
  etag: string,
  services: RoutingTable['services'],
  routes: RoutingTable['routes'] = [],
  rebuilding?: boolean,
): RoutingTable => ({
  etag,
  generatedAt: new Date().toISOString(),
  supergraph: null,
  services,
  routes,
  ...(rebuilding ? { rebuilding } : {}),
});

// Before the orchestrator restarted: auth, users (two instances) and media with its public route.
const BEFORE = table(
  'before',
  {
    auth: { instances: [instance('auth-1', 3002)] },
    media: { instances: [instance('media-1', 3004)] },
    users: { instances: [instance('users-1', 3001), instance('users-2', 4001)] },
  },
  [{ prefix: '/media/files', service: 'media', websocket: false }],
);

describe('routingDuringRebuild', () => {
  it('keeps the services a rebuilding table has no instance of yet, with their routes', () => {
    const rebuilding = table('r1', { users: { instances: [instance('users-2', 4001)] } }, [], true);
    const merged = routingDuringRebuild(BEFORE, rebuilding);
    expect(merged.etag).toBe('r1');
    expect(merged.services).toEqual({
      // users is back (one instance so far): taken as the new table has it.
      users: { instances: [instance('users-2', 4001)] },
      auth: BEFORE.services.auth,
      media: BEFORE.services.media,
    });
    expect(merged.routes).toEqual(BEFORE.routes);
  });

  it('takes a table that is not rebuilding, or the first table, as it is', () => {
    const whole = table('w', { users: { instances: [instance('users-2', 4001)] } });
    expect(routingDuringRebuild(BEFORE, whole)).toBe(whole);
    const first = table('f', {}, [], true);
    expect(routingDuringRebuild(undefined, first)).toBe(first);
  });
});

describe('a routing follower across a registry restart without Redis', () => {
  let served: RoutingTable = BEFORE;
  let server: Server;
  let orchestratorUrl = '';
  const waiting = new Set<() => void>();
  const serve = (next: RoutingTable) => {
    served = next;
    for (const wake of waiting) wake();
  };

  beforeAll(async () => {
    // The registry's long-poll: the table at once when its ETag is not the one given, else when it changes.
    server = createServer((request, response) => {
      const answer = () => {
        response.writeHead(200, { 'content-type': 'application/json', etag: `"${served.etag}"` });
        response.end(JSON.stringify(served));
      };
      if (request.headers['if-none-match'] !== `"${served.etag}"`) return answer();
      const wake = () => {
        waiting.delete(wake);
        answer();
      };
      waiting.add(wake);
      request.on('close', () => waiting.delete(wake));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    orchestratorUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('routes to the services not back yet until the registry is whole, then follows it exactly', async () => {
    const follower = createRoutingFollower({ orchestratorUrl, waitSeconds: 5 });
    follower.start();
    try {
      expect(await follower.ready(5_000)).toBe(true);
      expect(follower.current()?.etag).toBe('before');

      serve(table('r1', { users: { instances: [instance('users-2', 4001)] } }, [], true));
      await waitFor(() => follower.current()?.etag === 'r1', 5_000, 'the rebuilding table');
      expect(Object.keys(follower.current()?.services ?? {}).sort()).toEqual(['auth', 'media', 'users']);
      expect(follower.current()?.routes).toEqual(BEFORE.routes);

      // auth is back: its new instance replaces the one kept; media is still kept.
      serve(
        table(
          'r2',
          {
            auth: { instances: [instance('auth-9', 5002)] },
            users: { instances: [instance('users-2', 4001)] },
          },
          [],
          true,
        ),
      );
      await waitFor(() => follower.current()?.etag === 'r2', 5_000, 'the second rebuilding table');
      expect(follower.current()?.services.auth).toEqual({ instances: [instance('auth-9', 5002)] });
      expect(follower.current()?.services.media).toEqual(BEFORE.services.media);

      // Whole: media did not come back, so it is gone.
      const whole = table('whole', {
        auth: { instances: [instance('auth-9', 5002)] },
        users: { instances: [instance('users-2', 4001)] },
      });
      serve(whole);
      await waitFor(() => follower.current()?.etag === 'whole', 5_000, 'the whole table');
      expect(follower.current()).toEqual(whole);
    } finally {
      await follower.stop();
    }
  });
});
