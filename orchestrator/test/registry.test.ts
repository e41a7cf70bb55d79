import {
  createMemoryBus,
  type MemoryBus,
  RedisUnavailableError,
  type RoutingTable,
  sdlHash,
} from '@aiva/shared';
import { waitFor } from '@aiva/shared/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryStore } from '../src/registry/store.js';
import { createMemoryRegistryStore } from '../src/registry/store-memory.js';
import {
  api,
  authOf,
  keepAlive,
  PRODUCTS_SDL,
  PRODUCTS_WITH_PRICE_SDL,
  REVIEWS_SDL,
  type RunningRegistry,
  registerOk,
  registrationOf,
  routedIds,
  startRegistry,
  startSubgraph,
  type TestProject,
  testConfig,
  tokenOf,
  writeProject,
} from './fixtures/registry-harness.js';

// The registry over real HTTP, with the memory store and the committed supergraph of a small test project.
// Instances are real subgraph servers; probes run every 100 ms and the TTL is 1 s.

const WAIT = 10_000;

let project: TestProject;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(() => {
  project = writeProject();
});
afterAll(() => project.remove());
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function registry(env: Record<string, string> = {}, options: Parameters<typeof startRegistry>[1] = {}) {
  const running = await startRegistry(testConfig(project, env), options);
  cleanups.push(() => running.close());
  return running;
}

async function subgraph(
  name: 'products' | 'reviews',
  sdl = name === 'products' ? PRODUCTS_SDL : REVIEWS_SDL,
) {
  const running = await startSubgraph(name, sdl);
  cleanups.push(() => running.close());
  return running;
}

/** Registers and heartbeats until the end of the test. */
async function registerLive(r: RunningRegistry, body: ReturnType<typeof registrationOf>) {
  const id = await registerOk(r.url, body);
  cleanups.push(keepAlive(r.url, id, body.service));
  return id;
}

const routable = async (r: RunningRegistry, service: string, id: string) =>
  routedIds(await api.table(r.url), service).includes(id);

describe('registration credentials', () => {
  it('refuses a registration without a credential or with a wrong one (401), and nothing changes', async () => {
    const r = await registry();
    const products = await subgraph('products');
    const body = registrationOf(products);

    const missing = await api.register(r.url, body);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({
      errors: [{ message: expect.any(String), extensions: { code: 'UNAUTHENTICATED' } }],
    });
    const wrong = await api.register(r.url, body, { authorization: `Bearer ${'x'.repeat(43)}` });
    expect(wrong.status).toBe(401);
    const notBearer = await api.register(r.url, body, { authorization: tokenOf('products') });
    expect(notBearer.status).toBe(401);

    expect(await api.instances(r.url)).toEqual([]);
    expect((await api.table(r.url)).services).toEqual({});
  });

  it("refuses another service's credential (403): a users token cannot register or move a products instance", async () => {
    const r = await registry();
    const products = await subgraph('products');
    const body = registrationOf(products);

    const forged = await api.register(r.url, body, authOf('reviews'));
    expect(forged.status).toBe(403);
    expect(
      ((await forged.json()) as { errors: [{ extensions: { code: string } }] }).errors[0].extensions.code,
    ).toBe('FORBIDDEN');
    expect(await api.instances(r.url)).toEqual([]);

    const id = await registerLive(r, body);
    expect((await api.heartbeat(r.url, id, authOf('reviews'))).status).toBe(403);
    expect((await api.deregister(r.url, id, authOf('reviews'))).status).toBe(403);
    expect((await api.deregister(r.url, id, {})).status).toBe(401);
    expect(await api.instance(r.url, id)).toBeDefined();
  });

  it('refuses every write when no REGISTRY_SECRET is configured', async () => {
    const r = await registry({ REGISTRY_SECRET: '' });
    const products = await subgraph('products');
    const response = await api.register(r.url, registrationOf(products), authOf('products'));
    expect(response.status).toBe(401);
    expect(await api.instances(r.url)).toEqual([]);
  });

  it('answers 400 BAD_USER_INPUT naming the field of an invalid body', async () => {
    const r = await registry();
    const response = await api.register(
      r.url,
      { ...registrationOf({ name: 'products', url: 'ftp://nowhere', sdl: PRODUCTS_SDL }) },
      authOf('products'),
    );
    expect(response.status).toBe(400);
    const body = (await response.json()) as {
      errors: [{ message: string; extensions: Record<string, unknown> }];
    };
    expect(body.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'url' });
    expect(body.errors[0].message).toContain('url');

    const badReport = await api.report(r.url, 'gateway', {
      reporter: 'gw',
      instances: [{ instanceId: 'x' }],
    });
    expect(badReport.status).toBe(400);

    const malformed = await fetch(`${r.url}/v1/instances`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authOf('products') },
      body: '{"service":',
    });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toEqual({
      errors: [{ message: 'Malformed JSON body', extensions: { code: 'BAD_USER_INPUT' } }],
    });
  });

  it('takes an SDL of the largest size the protocol allows, and refuses bodies beyond the limit (413)', async () => {
    const r = await registry();
    const products = await subgraph('products');
    const padding = `# ${'x'.repeat(99)}\n`.repeat(19_000);
    const big = await api.register(
      r.url,
      registrationOf(products, { sdl: `${padding}${PRODUCTS_SDL}` }),
      authOf('products'),
    );
    expect(big.status).toBe(201);
    const tooBig = await fetch(`${r.url}/v1/instances`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authOf('products') },
      body: JSON.stringify({ padding: 'x'.repeat(4 * 1024 * 1024) }),
    });
    expect(tooBig.status).toBe(413);
  });

  it('takes a heartbeat with an empty JSON body', async () => {
    const r = await registry();
    const products = await subgraph('products');
    const id = await registerOk(r.url, registrationOf(products));
    const response = await fetch(`${r.url}/v1/instances/${id}/heartbeat`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...authOf('products') },
    });
    expect(response.status).toBe(204);
  });

  it('does not let a service take over an instance id another service registered (409)', async () => {
    const r = await registry();
    const products = await subgraph('products');
    const reviews = await subgraph('reviews');
    const id = await registerLive(r, registrationOf(products));
    const response = await api.register(
      r.url,
      registrationOf(reviews, { instanceId: id }),
      authOf('reviews'),
    );
    expect(response.status).toBe(409);
    expect((await api.instance(r.url, id))?.service).toBe('products');
  });
});

describe('lifecycle', () => {
  it('probes a new instance at once and routes to it when its /ready passes', async () => {
    const r = await registry();
    const products = await subgraph('products');
    const body = registrationOf(products, { routes: [{ prefix: '/products/files', websocket: false }] });
    const response = await api.register(r.url, body, authOf('products'));
    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({
      instanceId: body.instanceId,
      heartbeatIntervalMs: 200,
      ttlMs: 1000,
    });

    await waitFor(() => routable(r, 'products', body.instanceId), WAIT, 'the instance in the routing table');
    const table = await api.table(r.url);
    expect(table.services.products?.instances).toEqual([
      { id: body.instanceId, url: products.url, graphqlUrl: `${products.url}/graphql` },
    ]);
    expect(table.routes).toEqual([{ service: 'products', prefix: '/products/files', websocket: false }]);
    expect(table.supergraph).toEqual({ hash: expect.stringMatching(/^[0-9a-f]{64}$/), mode: 'committed' });
    const view = await api.instance(r.url, body.instanceId);
    expect(view).toMatchObject({ health: 'healthy', schema: 'ok', routable: true, source: 'register' });
  });

  it('keeps instances that kept heartbeating through an outage of its store (their heartbeats could not be written)', async () => {
    // A store that fails while `down` (as Redis does when it is killed), then answers again with what it had.
    const inner = createMemoryRegistryStore();
    let down = false;
    const failing = <T>(call: () => Promise<T>) =>
      down ? Promise.reject(new RedisUnavailableError('registry', 'offline')) : call();
    const store: RegistryStore = {
      kind: 'redis',
      put: (record, sdl) => failing(() => inner.put(record, sdl)),
      update: (id, changes, sdl) => failing(() => inner.update(id, changes, sdl)),
      addTraffic: (id, sample) => failing(() => inner.addTraffic(id, sample)),
      remove: (id) => failing(() => inner.remove(id)),
      get: (id) => failing(() => inner.get(id)),
      list: () => failing(() => inner.list()),
      sdlOf: (id) => failing(() => inner.sdlOf(id)),
      version: () => failing(() => inner.version()),
      holdLease: (owner, ttlMs) => failing(() => inner.holdLease(owner, ttlMs)),
      releaseLease: (owner) => failing(() => inner.releaseLease(owner)),
      ping: () => failing(() => inner.ping()),
      close: () => inner.close(),
    };
    const r = await registry({}, { store });
    const products = await subgraph('products');
    const id = await registerOk(r.url, registrationOf(products));
    // Heartbeats just inside the TTL (1 s), as production's 2 s in 6 s: after the outage, the sweep (every 500 ms)
    // comes before the next heartbeat.
    let beating = true;
    const beats = (async () => {
      while (beating) {
        await api.heartbeat(r.url, id, authOf('products')).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 900));
      }
    })();
    cleanups.push(async () => {
      beating = false;
      await beats;
    });
    await waitFor(async () => routable(r, 'products', id), WAIT, 'the instance to be routable');
    down = true;
    // Meanwhile a heartbeat is answered 503 with a clear reason (not a 500 logged per request).
    const during = await api.heartbeat(r.url, id, authOf('products'));
    expect(during.status).toBe(503);
    expect(await during.json()).toMatchObject({
      errors: [{ extensions: { code: 'INTERNAL_SERVER_ERROR', reason: 'DEPENDENCY_UNAVAILABLE' } }],
    });
    // Longer than the TTL (1 s): every stored heartbeat is older than the TTL when the store is back.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    down = false;
    // Several sweeps (every 500 ms) after the store answers again, the instance heartbeats on and is still there.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await api.instance(r.url, id)).toBeDefined();
    expect(await routable(r, 'products', id)).toBe(true);
  });

  it('keeps an instance that heartbeats and drops one that falls silent past the TTL', async () => {
    const r = await registry();
    const products = await subgraph('products');
    const talking = await registerOk(r.url, registrationOf(products));
    const silent = await registerOk(r.url, registrationOf(products));
    let beating = true;
    const beat = async () => {
      while (beating) {
        const response = await api.heartbeat(r.url, talking, authOf('products'), {
          load: { inflight: 1, requestsTotal: 7 },
        });
        expect(response.status).toBe(204);
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    };
    const beats = beat();
    try {
      await waitFor(
        async () => !(await api.instance(r.url, silent)),
        WAIT,
        'the silent instance to be dropped',
      );
      expect(await api.instance(r.url, talking)).toMatchObject({ load: { inflight: 1, requestsTotal: 7 } });
      expect(await routable(r, 'products', talking)).toBe(true);
    } finally {
      beating = false;
      await beats;
    }
    const response = await api.heartbeat(r.url, silent, authOf('products'));
    expect(response.status).toBe(404);
  });

  it('deregisters an instance (204), then knows nothing of it (404)', async () => {
    const r = await registry();
    const products = await subgraph('products');
    const id = await registerLive(r, registrationOf(products));
    await waitFor(() => routable(r, 'products', id), WAIT, 'the instance routed');
    expect((await api.deregister(r.url, id, authOf('products'))).status).toBe(204);
    expect(await api.instance(r.url, id)).toBeUndefined();
    expect(routedIds(await api.table(r.url), 'products')).toEqual([]);
    expect((await api.deregister(r.url, id, authOf('products'))).status).toBe(404);
  });

  it('removeSlot drops every instance of a slot at once; waitForSlot resolves when one is routable', async () => {
    const r = await registry();
    const products = await subgraph('products');
    const waiting = r.registry.waitForSlot('products#1', AbortSignal.timeout(WAIT));
    const first = await registerLive(r, registrationOf(products, { slot: 'products#1' }));
    const second = await registerLive(r, registrationOf(products, { slot: 'products#1' }));
    const other = await registerLive(r, registrationOf(products, { slot: 'products#2' }));
    const ready = await waiting;
    expect([first, second]).toContain(ready.instanceId);
    expect(ready.routable).toBe(true);

    const removed = await r.registry.removeSlot('products#1', 'process exited with code 1');
    expect(removed.map((v) => v.instanceId).sort()).toEqual([first, second].sort());
    expect((await api.instances(r.url)).map((v) => v.instanceId)).toEqual([other]);

    const aborted = new AbortController();
    const never = r.registry.waitForSlot('products#9', aborted.signal);
    aborted.abort(new Error('gave up'));
    await expect(never).rejects.toThrow('gave up');
  });

  it('takes an instance whose /ready fails out of the table and brings it back when it passes', async () => {
    const r = await registry();
    const products = await subgraph('products');
    const id = await registerLive(r, registrationOf(products));
    await waitFor(() => routable(r, 'products', id), WAIT, 'the instance routed');

    products.setReady(false);
    await waitFor(async () => !(await routable(r, 'products', id)), WAIT, 'the instance out of the table');
    expect(await api.instance(r.url, id)).toMatchObject({
      health: 'unhealthy',
      healthReason: 'ready answered 503',
      routable: false,
    });

    products.setReady(true);
    await waitFor(() => routable(r, 'products', id), WAIT, 'the instance back in the table');
    expect(await api.instance(r.url, id)).toMatchObject({ health: 'healthy', healthReason: null });
  });

  it('answers a heartbeat of an unknown id with 404 after a restart without Redis, and takes the new registration', async () => {
    const products = await subgraph('products');
    const before = await startRegistry(testConfig(project));
    const body = registrationOf(products);
    await registerOk(before.url, body);
    await before.close();

    const after = await registry();
    expect((await api.heartbeat(after.url, body.instanceId, authOf('products'))).status).toBe(404);
    await registerOk(after.url, body);
    cleanups.push(keepAlive(after.url, body.instanceId, 'products'));
    expect((await api.heartbeat(after.url, body.instanceId, authOf('products'))).status).toBe(204);
    await waitFor(
      () => routable(after, 'products', body.instanceId),
      WAIT,
      'the re-registered instance routed',
    );
  });

  it('says rebuilding for its window after starting empty, then ends it with a table long-polls hear', async () => {
    const products = await subgraph('products');
    const r = await registry({}, { tuning: { rebuildWindowMs: 1_500 } });
    const body = registrationOf(products);
    await registerLive(r, body);
    await waitFor(() => routable(r, 'products', body.instanceId), WAIT, 'the instance routed');
    const during = await api.table(r.url);
    expect(during.rebuilding).toBe(true);

    // The end of the window is a change of the table: a long-poll on it answers then, routing the same.
    const polling = await fetch(`${r.url}/v1/routing?wait=20`, {
      headers: { 'if-none-match': `"${during.etag}"` },
    });
    expect(polling.status).toBe(200);
    const after = (await polling.json()) as RoutingTable;
    expect(after.rebuilding).toBeUndefined();
    expect(after.etag).not.toBe(during.etag);
    expect(after.services).toEqual(during.services);
  });

  it('does not say rebuilding when it recovered instances from its store', async () => {
    const store = createMemoryRegistryStore();
    const products = await subgraph('products');
    const first = await startRegistry(testConfig(project), { store, tuning: { rebuildWindowMs: 0 } });
    const body = registrationOf(products);
    await registerOk(first.url, body);
    await first.close();

    const second = await startRegistry(testConfig(project), { store, tuning: { rebuildWindowMs: 60_000 } });
    cleanups.push(() => second.close());
    cleanups.push(keepAlive(second.url, body.instanceId, 'products'));
    await waitFor(() => routable(second, 'products', body.instanceId), WAIT, 'the recovered instance routed');
    expect((await api.table(second.url)).rebuilding).toBeUndefined();
  });

  it('publishes instance up and down events on the bus', async () => {
    const bus: MemoryBus = createMemoryBus();
    cleanups.push(() => bus.close());
    const seen: string[] = [];
    await bus.subscribe('test.up', 'aiva.orchestrator.instance.up.v1', async (event) => {
      seen.push(`up ${event.data.instanceId}`);
    });
    await bus.subscribe('test.down', 'aiva.orchestrator.instance.down.v1', async (event) => {
      seen.push(`down ${event.data.instanceId}: ${event.data.reason}`);
    });
    const r = await registry({}, { bus });
    const products = await subgraph('products');
    const id = await registerLive(r, registrationOf(products));
    await waitFor(() => seen.includes(`up ${id}`), WAIT, 'the up event');
    await api.deregister(r.url, id, authOf('products'));
    await waitFor(() => seen.includes(`down ${id}: deregistered`), WAIT, 'the down event');
  });

  it('keeps a failing bus from breaking the registry', async () => {
    const bus = createMemoryBus();
    await bus.close();
    const r = await registry({}, { bus });
    const products = await subgraph('products');
    const id = await registerLive(r, registrationOf(products));
    await waitFor(() => routable(r, 'products', id), WAIT, 'the instance routed despite the closed bus');
  });
});

describe('routing table', () => {
  it('long-polls: answers as soon as the table changes, and 304 with the same ETag when the wait ends', async () => {
    const r = await registry();
    const first = await fetch(`${r.url}/v1/routing`);
    const etag = first.headers.get('etag')!;
    expect(etag).toBe(`"${((await first.json()) as { etag: string }).etag}"`);

    const idle = await fetch(`${r.url}/v1/routing?wait=0.3`, { headers: { 'if-none-match': etag } });
    expect(idle.status).toBe(304);
    expect(idle.headers.get('etag')).toBe(etag);

    const products = await subgraph('products');
    const polling = fetch(`${r.url}/v1/routing?wait=20`, { headers: { 'if-none-match': etag } });
    const id = await registerLive(r, registrationOf(products));
    const changed = await polling;
    expect(changed.status).toBe(200);
    const table = (await changed.json()) as { etag: string; services: Record<string, unknown> };
    expect(changed.headers.get('etag')).toBe(`"${table.etag}"`);
    expect(table.etag).not.toBe(etag.replaceAll('"', ''));
    expect(routedIds(table as never, 'products')).toEqual([id]);
  });

  it('ends a pending long-poll when the registry closes (the close does not wait for it)', async () => {
    const r = await startRegistry(testConfig(project));
    cleanups.push(() => r.close());
    const etag = (await api.table(r.url)).etag;
    const polling = fetch(`${r.url}/v1/routing?wait=30`, { headers: { 'if-none-match': `"${etag}"` } });
    await waitFor(
      () => new Promise<boolean>((resolve) => r.app.server.getConnections((_e, n) => resolve(n > 0))),
      WAIT,
      'the long-poll to arrive',
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    await r.close();
    expect((await polling).status).toBe(304);
  });

  it('keeps the ETag when nothing routing-related changes (heartbeats)', async () => {
    const r = await registry();
    const products = await subgraph('products');
    const id = await registerLive(r, registrationOf(products));
    await waitFor(() => routable(r, 'products', id), WAIT, 'the instance routed');
    const before = await api.table(r.url);
    await api.heartbeat(r.url, id, authOf('products'), { load: { inflight: 3, requestsTotal: 10 } });
    const after = await api.table(r.url);
    expect(after.etag).toBe(before.etag);
  });

  it('gives a route prefix two services claim to the first registered, and shows the conflict', async () => {
    const r = await registry();
    const products = await subgraph('products');
    const reviews = await subgraph('reviews');
    const route = { prefix: '/files', websocket: false };
    const first = await registerLive(r, registrationOf(products, { routes: [route] }));
    await waitFor(() => routable(r, 'products', first), WAIT, 'products routed');
    const second = await registerLive(r, registrationOf(reviews, { routes: [route] }));
    await waitFor(() => routable(r, 'reviews', second), WAIT, 'reviews routed');
    expect((await api.table(r.url)).routes).toEqual([
      { service: 'products', prefix: '/files', websocket: false },
    ]);
    expect((await api.status(r.url)).routeConflicts).toEqual([
      { prefix: '/files', keptBy: 'products', ignored: 'reviews' },
    ]);
  });

  it('lists gateways among the instances but not in the table', async () => {
    const r = await registry();
    const gateway = await subgraph('products');
    const id = await registerLive(
      r,
      registrationOf({ name: 'gateway', url: gateway.url, sdl: '' }, { kind: 'gateway', sdl: undefined }),
    );
    await waitFor(
      async () => (await api.instance(r.url, id))?.health === 'healthy',
      WAIT,
      'the gateway healthy',
    );
    expect(Object.keys((await api.table(r.url)).services)).toEqual([]);
    expect((await api.instances(r.url, 'gateway')).map((i) => i.kind)).toEqual(['gateway']);
  });
});

describe('passive health', () => {
  it('probes at once an instance a gateway reports connection failures for, and takes it out when it is down', async () => {
    // Probes every 60 s: only the report can trigger the probe that finds it down.
    const r = await registry({ PROBE_INTERVAL_MS: '60000', UNHEALTHY_THRESHOLD: '1' });
    const products = await subgraph('products');
    const id = await registerLive(r, registrationOf(products));
    await waitFor(() => routable(r, 'products', id), WAIT, 'the instance routed');
    await products.close();

    const response = await api.report(r.url, 'gateway', {
      reporter: 'gateway-1',
      instances: [
        {
          instanceId: id,
          service: 'products',
          requests: 3,
          errors: 0,
          connectionFailures: 3,
          timeouts: 0,
          latencySecondsSum: 0.01,
          breaker: 'open',
        },
      ],
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ accepted: 1, unknown: [] });
    await waitFor(
      async () => !(await routable(r, 'products', id)),
      WAIT,
      'the dead instance out of the table',
    );
    expect(await api.instance(r.url, id)).toMatchObject({
      health: 'unhealthy',
      healthReason: 'connection refused',
      breaker: 'open',
    });
  });

  it('ejects an instance whose responses mostly fail, and a passing probe brings it back after the ejection', async () => {
    const r = await registry({}, { tuning: { ejectionBaseMs: 1_000 } });
    const products = await subgraph('products');
    const id = await registerLive(r, registrationOf(products));
    await waitFor(() => routable(r, 'products', id), WAIT, 'the instance routed');
    const traffic = {
      instanceId: id,
      service: 'products',
      connectionFailures: 0,
      timeouts: 0,
      breaker: 'closed',
    };

    const response = await api.report(r.url, 'gateway', {
      reporter: 'gateway-1',
      windowSeconds: 2,
      instances: [{ ...traffic, requests: 20, errors: 15, latencySecondsSum: 0.4 }],
    });
    expect(response.status).toBe(200);
    expect(await routable(r, 'products', id)).toBe(false);
    expect(await api.instance(r.url, id)).toMatchObject({
      health: 'unhealthy',
      healthReason: 'ejected: 15 of 20 requests failed',
      requestRate: 10,
    });
    // The probes pass meanwhile, but only the end of the ejection lets them bring it back.
    await waitFor(() => routable(r, 'products', id), WAIT, 'the instance back after its ejection');

    const unknown = await api.report(r.url, 'gateway', {
      reporter: 'gateway-1',
      instances: [{ ...traffic, instanceId: 'nobody', requests: 1, errors: 0, latencySecondsSum: 0 }],
    });
    expect(await unknown.json()).toEqual({ accepted: 0, unknown: ['nobody'] });
  });

  it("refuses a report without the reporter's credential", async () => {
    const r = await registry();
    const body = { reporter: 'gateway-1', instances: [] };
    expect((await api.report(r.url, 'gateway', body, {})).status).toBe(401);
    expect((await api.report(r.url, 'gateway', body, authOf('products'))).status).toBe(403);
    expect((await api.report(r.url, 'gateway', body)).status).toBe(200);
  });
});

describe('committed supergraph', () => {
  it('serves the committed SDL with its hash', async () => {
    const r = await registry();
    const response = await fetch(`${r.url}/v1/supergraph`);
    expect(response.status).toBe(200);
    const sdl = await response.text();
    const hash = response.headers.get('x-supergraph-hash');
    expect(sdl).toContain('join__Graph');
    expect((await api.table(r.url)).supergraph).toEqual({ hash, mode: 'committed' });
    expect(response.headers.get('etag')).toBe(`"${hash}"`);
    const again = await fetch(`${r.url}/v1/supergraph`, { headers: { 'if-none-match': `"${hash}"` } });
    expect(again.status).toBe(304);
  });

  it('answers 503 when there is no supergraph', async () => {
    const r = await registry({ SUPERGRAPH_PATH: `${project.dir}/missing.graphql` });
    const response = await fetch(`${r.url}/v1/supergraph`);
    expect(response.status).toBe(503);
    expect(((await response.json()) as { errors: unknown[] }).errors).toHaveLength(1);
    expect((await api.table(r.url)).supergraph).toBeNull();
  });

  it('flags an instance serving another SDL, or a subgraph the supergraph lacks, and never routes to it', async () => {
    const r = await registry();
    const good = await subgraph('products');
    const changed = await subgraph('products', PRODUCTS_WITH_PRICE_SDL);
    const goodId = await registerLive(r, registrationOf(good));
    const changedId = await registerLive(r, registrationOf(changed));
    const hashOnly = await registerLive(
      r,
      registrationOf(changed, { sdl: undefined, sdlHash: sdlHash(PRODUCTS_WITH_PRICE_SDL) }),
    );
    const stranger = await registerLive(
      r,
      registrationOf({ name: 'inventory', url: good.url, sdl: PRODUCTS_SDL }),
    );

    await waitFor(() => routable(r, 'products', goodId), WAIT, 'the matching instance routed');
    await waitFor(
      async () => (await api.instances(r.url)).every((i) => i.health === 'healthy'),
      WAIT,
      'every instance healthy',
    );
    const views = await api.instances(r.url);
    const byId = new Map(views.map((v) => [v.instanceId, v]));
    expect(byId.get(goodId)).toMatchObject({ schema: 'ok', routable: true });
    expect(byId.get(changedId)).toMatchObject({ schema: 'mismatch', routable: false, health: 'healthy' });
    expect(byId.get(hashOnly)).toMatchObject({ schema: 'mismatch', routable: false });
    expect(byId.get(stranger)).toMatchObject({ schema: 'mismatch', routable: false });
    const table = await api.table(r.url);
    expect(routedIds(table, 'products')).toEqual([goodId]);
    expect(table.services.inventory).toBeUndefined();
  });
});

describe('metrics and ops', () => {
  it('exposes per-instance series from the reports and the registry', async () => {
    const r = await registry();
    const products = await subgraph('products');
    const id = await registerLive(r, registrationOf(products));
    await waitFor(() => routable(r, 'products', id), WAIT, 'the instance routed');
    await api.report(r.url, 'gateway', {
      reporter: 'gateway-1',
      instances: [
        {
          instanceId: id,
          service: 'products',
          requests: 4,
          errors: 1,
          connectionFailures: 0,
          timeouts: 1,
          latencySecondsSum: 0.5,
          breaker: 'half-open',
        },
      ],
    });
    const text = await (await fetch(`${r.url}/metrics`)).text();
    const labels = `service="products",instance="${id}"`;
    expect(text).toContain(`aiva_instance_requests_total{${labels}} 4`);
    expect(text).toContain(`aiva_instance_errors_total{${labels}} 1`);
    expect(text).toContain(`aiva_instance_connection_failures_total{${labels}} 0`);
    expect(text).toContain(`aiva_instance_timeouts_total{${labels}} 1`);
    expect(text).toContain(`aiva_instance_request_duration_seconds_sum{${labels}} 0.5`);
    expect(text).toContain(`aiva_instance_request_duration_seconds_count{${labels}} 4`);
    expect(text).toContain(`aiva_instance_breaker_state{${labels},state="half-open"} 1`);
    expect(text).toContain(`aiva_instance_breaker_state{${labels},state="closed"} 0`);
    expect(text).toContain(`aiva_instance_healthy{${labels}} 1`);
    expect(text).toContain(`aiva_instance_routable{${labels}} 1`);
    expect(text).toContain('aiva_supergraph_compositions_total{outcome="ok"} 1');
  });

  it('answers /health and /ready, and sends security headers', async () => {
    const r = await registry();
    const health = await fetch(`${r.url}/health`);
    expect(health.status).toBe(200);
    expect(health.headers.get('x-content-type-options')).toBe('nosniff');
    const ready = await fetch(`${r.url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { store: 'up' } });
  });

  it('shows the supervisor processes in the status when a supervisor is given', async () => {
    const r = await registry(
      {},
      {
        supervisor: {
          status: () => [
            {
              service: 'users',
              slot: 'users#1',
              pid: null,
              state: 'crash-loop',
              restarts: 5,
              startedAt: null,
              lastExit: { code: 1, signal: null, at: new Date().toISOString() },
              reason: 'crashed 5 times at start',
            },
          ],
        },
      },
    );
    const status = await api.status(r.url);
    expect(status.processes).toEqual([expect.objectContaining({ slot: 'users#1', state: 'crash-loop' })]);
    expect(status.orchestrator).toMatchObject({ store: 'memory', mode: 'committed', registrationOpen: true });
    expect(status.services.map((s) => s.name)).toEqual(['products', 'reviews']);
  });
});
