import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'graphql';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import type { GraphQLHttpServer } from '../src/server/graphql-http-server.js';
import { type ReadinessCheck, runReadinessChecks } from '../src/server/readiness.js';
import { createSubgraphServer } from '../src/server/subgraph-server.js';

const typeDefs = parse(/* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])

  type Thing @key(fields: "id") {
    id: ID!
    name: String!
  }

  type Query {
    hello: String!
    slow(ms: Int!): String!
    thing(id: ID!): Thing
  }
`);

/** Server-side trace of the slow resolver, so ordering is checked where it happens. */
const trace: string[] = [];

const resolvers = {
  Query: {
    hello: () => 'world',
    slow: async (_: unknown, { ms }: { ms: number }) => {
      trace.push('resolver started');
      await sleep(ms);
      trace.push('resolver finished');
      return `waited ${ms}`;
    },
    thing: (_: unknown, { id }: { id: string }) => ({ id, name: `thing ${id}` }),
  },
};

const SECRET = 's3cr3t-Passw0rd';

interface Started {
  server: GraphQLHttpServer;
  url: string;
}

const open: GraphQLHttpServer[] = [];

async function start(
  options: { name?: string; readiness?: ReadinessCheck[]; onClose?: Array<() => Promise<void>> } = {},
): Promise<Started> {
  const server = await createSubgraphServer({
    name: options.name ?? 'things',
    logger: createLogger('t', { level: 'silent' }),
    typeDefs,
    resolvers,
    ...(options.readiness ? { readiness: options.readiness } : {}),
    ...(options.onClose ? { onClose: options.onClose } : {}),
  });
  open.push(server);
  const url = await server.listen({ port: 0, host: '127.0.0.1' });
  return { server, url };
}

function gql(url: string, query: string, operationName?: string, variables?: Record<string, unknown>) {
  return fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      query,
      ...(operationName ? { operationName } : {}),
      ...(variables ? { variables } : {}),
    }),
  });
}

/**
 * POSTs a GraphQL request on a connection of its own that is not kept alive (`Connection: close`), the way a
 * one-off client calls. fetch (undici) always keeps connections alive; see the keep-alive test below.
 */
function postOnce(url: string, query: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify({ query });
    const req = httpRequest(
      `${url}/graphql`,
      {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
          } catch (error) {
            reject(error);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

afterEach(async () => {
  trace.length = 0;
  await Promise.all(open.splice(0).map((server) => server.close()));
});

describe('subgraph server over HTTP', () => {
  it('listens on an ephemeral port and answers GraphQL', async () => {
    const { url } = await start();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(url).not.toMatch(/:0$/);
    const response = await gql(url, 'query Hello { hello }', 'Hello');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: { hello: 'world' } });
  });

  it('/health answers 200 with the service name', async () => {
    const { url } = await start({ name: 'things' });
    const response = await fetch(`${url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok', service: 'things' });
  });

  describe('/ready', () => {
    it('answers 200 when every check passes', async () => {
      const { url } = await start({
        readiness: [
          { name: 'db', check: async () => {} },
          { name: 'bus', check: async () => {} },
        ],
      });
      const response = await fetch(`${url}/ready`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({
        status: 'ready',
        service: 'things',
        checks: { db: 'up', bus: 'up' },
      });
    });

    it('answers 200 with no checks at all', async () => {
      const { url } = await start();
      const response = await fetch(`${url}/ready`);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ status: 'ready', checks: {} });
    });

    it('answers 503 naming the failed check, without the error details', async () => {
      const { url } = await start({
        readiness: [
          {
            name: 'db',
            check: async () => {
              throw new Error(`connect failed: mongodb://admin:${SECRET}@db.internal:27017`);
            },
          },
          { name: 'bus', check: async () => {} },
        ],
      });
      const response = await fetch(`${url}/ready`);
      expect(response.status).toBe(503);
      const text = await response.text();
      expect(JSON.parse(text)).toEqual({
        status: 'not_ready',
        service: 'things',
        checks: { db: 'down', bus: 'up' },
      });
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain('db.internal');
      expect(text).not.toContain('connect failed');
    });
  });

  describe('runReadinessChecks', () => {
    it('marks a check that hangs past the timeout as down, and reports why only to onFailure', async () => {
      const failures: Array<[string, unknown]> = [];
      const startedAt = Date.now();
      const report = await runReadinessChecks(
        [
          { name: 'db', check: () => new Promise<void>(() => {}) },
          { name: 'cache', check: async () => {} },
        ],
        { timeoutMs: 50, onFailure: (name, error) => failures.push([name, error]) },
      );
      expect(Date.now() - startedAt).toBeLessThan(1000);
      expect(report).toEqual({ ready: false, checks: { db: 'down', cache: 'up' } });
      expect(failures).toHaveLength(1);
      const [name, error] = failures[0] ?? [];
      expect(name).toBe('db');
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(/timed out after 50 ms/);
      expect(JSON.stringify(report)).not.toMatch(/timed out/);
    });

    it('runs checks in parallel, so the total time is bounded by one timeout', async () => {
      const startedAt = Date.now();
      const report = await runReadinessChecks(
        [
          { name: 'a', check: () => new Promise<void>(() => {}) },
          { name: 'b', check: () => new Promise<void>(() => {}) },
          { name: 'c', check: () => new Promise<void>(() => {}) },
        ],
        { timeoutMs: 100 },
      );
      expect(Date.now() - startedAt).toBeLessThan(280);
      expect(report).toEqual({ ready: false, checks: { a: 'down', b: 'down', c: 'down' } });
    });

    it('is ready with no checks', async () => {
      expect(await runReadinessChecks([])).toEqual({ ready: true, checks: {} });
    });

    it('stays ready while a soft check fails, and reports it under degraded', async () => {
      const report = await runReadinessChecks([
        { name: 'store', check: async () => {} },
        {
          name: 'events',
          soft: true,
          check: async () => {
            throw new Error('NATS is down');
          },
        },
      ]);
      expect(report).toEqual({
        ready: true,
        checks: { store: 'up', events: 'down' },
        degraded: { events: 'down' },
      });
    });

    it('bounds a soft check that hangs by the shorter soft timeout', async () => {
      const failures: string[] = [];
      const report = await runReadinessChecks(
        [{ name: 'cache', soft: true, check: () => new Promise<void>(() => {}) }],
        {
          timeoutMs: 5_000,
          softTimeoutMs: 50,
          onFailure: (_name, error) => failures.push((error as Error).message),
        },
      );
      // Given up on after the soft timeout, not the hard one.
      expect(failures).toEqual(['timed out after 50 ms']);
      expect(report).toEqual({ ready: true, checks: { cache: 'down' }, degraded: { cache: 'down' } });
    });

    it('reports the parts a passing check names as down under degraded', async () => {
      const report = await runReadinessChecks([
        { name: 'users', check: async () => ({ down: ['instance-2'] }) },
      ]);
      expect(report).toEqual({
        ready: true,
        checks: { users: 'up' },
        degraded: { 'users/instance-2': 'down' },
      });
    });

    it('keeps a secret from a thrown error out of the report', async () => {
      const report = await runReadinessChecks([
        {
          name: 'db',
          check: async () => {
            throw new Error(`password=${SECRET}`);
          },
        },
      ]);
      expect(report).toEqual({ ready: false, checks: { db: 'down' } });
      expect(JSON.stringify(report)).not.toContain(SECRET);
    });
  });

  describe('/metrics', () => {
    it('counts a named operation', async () => {
      const { url } = await start({ name: 'things' });
      await (await gql(url, 'query CountMe { hello }', 'CountMe')).json();
      const response = await fetch(`${url}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await response.text();
      const line = text
        .split('\n')
        .find((l) => l.startsWith('aiva_graphql_requests_total{') && l.includes('operation="CountMe"'));
      expect(line).toBeDefined();
      expect(line).toContain('outcome="success"');
      expect(line).toContain('service="things"');
      expect(line).toMatch(/ 1$/);
      expect(text).toContain('aiva_graphql_request_duration_seconds');
    });

    it('keeps each server in its own registry', async () => {
      const a = await start({ name: 'alpha' });
      const b = await start({ name: 'beta' });
      await (await gql(a.url, 'query OnlyOnAlpha { hello }', 'OnlyOnAlpha')).json();
      await (await gql(b.url, 'query OnlyOnBeta { hello }', 'OnlyOnBeta')).json();

      const alpha = await (await fetch(`${a.url}/metrics`)).text();
      const beta = await (await fetch(`${b.url}/metrics`)).text();
      expect(alpha).toContain('operation="OnlyOnAlpha"');
      expect(alpha).not.toContain('OnlyOnBeta');
      expect(alpha).not.toContain('service="beta"');
      expect(beta).toContain('operation="OnlyOnBeta"');
      expect(beta).not.toContain('OnlyOnAlpha');
      expect(beta).not.toContain('service="alpha"');
    });
  });

  it('answers an unknown route with 404 and a GraphQL error body', async () => {
    const { url } = await start();
    const response = await fetch(`${url}/nope?secret=1`);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/application\/json/);
    const body = (await response.json()) as {
      errors: Array<{ message: string; extensions: { code: string } }>;
    };
    expect(body).toMatchObject({ errors: [{ extensions: { code: 'NOT_FOUND' } }] });
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0]?.message).toBe('No route for GET /nope');
  });

  describe('graceful close', () => {
    it('finishes an in-flight request, then refuses new connections, then runs onClose in order', async () => {
      const { server, url } = await start({
        onClose: [
          async () => {
            await sleep(20);
            trace.push('onClose 1');
          },
          async () => {
            trace.push('onClose 2');
          },
        ],
      });

      const inFlight = postOnce(url, 'query Slow { slow(ms: 300) }');
      // Close only once the request is inside the resolver.
      while (!trace.includes('resolver started')) await sleep(5);
      const closed = server.close().then(() => trace.push('close resolved'));

      expect(await inFlight).toEqual({ status: 200, body: { data: { slow: 'waited 300' } } });
      await closed;
      expect(trace).toEqual([
        'resolver started',
        'resolver finished',
        'onClose 1',
        'onClose 2',
        'close resolved',
      ]);

      await expect(fetch(`${url}/health`)).rejects.toThrow(/fetch failed/);
      await expect(postOnce(url, '{ hello }')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    });

    it('closes promptly when the in-flight request came on a keep-alive connection', async () => {
      let onCloseRan = false;
      const { server, url } = await start({
        onClose: [
          async () => {
            onCloseRan = true;
          },
        ],
      });
      try {
        const inFlight = fetch(`${url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: '{ slow(ms: 300) }' }),
        });
        while (!trace.includes('resolver started')) await sleep(5);
        const closed = server.close();
        const response = await inFlight;
        expect(await response.json()).toEqual({ data: { slow: 'waited 300' } });
        const outcome = await Promise.race([
          closed.then(() => 'closed'),
          sleep(2000).then(() => 'still open'),
        ]);
        expect(outcome).toBe('closed');
        expect(onCloseRan).toBe(true);
      } finally {
        // Let close() finish now rather than after the keep-alive timeout.
        server.app.server.closeAllConnections();
        await server.close();
      }
    });

    it('can be called twice: both calls resolve and onClose runs once', async () => {
      let runs = 0;
      const { server } = await start({
        onClose: [
          async () => {
            runs += 1;
          },
        ],
      });
      const first = server.close();
      const second = server.close();
      await expect(Promise.all([first, second])).resolves.toBeDefined();
      await expect(server.close()).resolves.toBeUndefined();
      expect(runs).toBe(1);
    });

    it('installs no process signal handlers of its own, whatever NODE_ENV is', async () => {
      const signals = ['SIGINT', 'SIGTERM'] as const;
      const before = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]));
      const nodeEnv = process.env.NODE_ENV;
      process.env.NODE_ENV = 'production';
      let added: Array<[NodeJS.Signals, (...args: unknown[]) => void]> = [];
      try {
        await start();
        added = signals.flatMap((signal) =>
          process
            .listeners(signal)
            .filter((listener) => !before.get(signal)?.has(listener))
            .map((listener) => [signal, listener] as [NodeJS.Signals, (...args: unknown[]) => void]),
        );
        expect(added.map(([signal]) => signal)).toEqual([]);
      } finally {
        process.env.NODE_ENV = nodeEnv;
        for (const [signal, listener] of added) process.removeListener(signal, listener);
      }
    });

    it('keeps running later onClose hooks when one fails', async () => {
      const events: string[] = [];
      const { server } = await start({
        onClose: [
          async () => {
            throw new Error('adapter exploded');
          },
          async () => {
            events.push('second');
          },
        ],
      });
      await expect(server.close()).resolves.toBeUndefined();
      expect(events).toEqual(['second']);
    });
  });
});
