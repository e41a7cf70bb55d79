import { waitFor } from '@aiva/shared/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  keepAlive,
  PRODUCTS_WITH_PRICE_SDL,
  REVIEWS_BREAKING_SDL,
  REVIEWS_SDL,
  type RunningRegistry,
  registerOk,
  registrationOf,
  routedIds,
  startRegistry,
  startSubgraph,
  type TestProject,
  testConfig,
  writeProject,
} from './fixtures/registry-harness.js';

// Live mode (development): the supergraph is composed from the SDL the live instances serve; a composition that
// fails never replaces the last good one.

const WAIT = 10_000;

const INVENTORY_SDL = `extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])

type Product @key(fields: "id") {
  id: ID!
  stock: Int!
}
`;

let project: TestProject;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(() => {
  project = writeProject();
});
afterAll(() => project.remove());
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function liveRegistry(): Promise<RunningRegistry> {
  const running = await startRegistry(testConfig(project, { SUPERGRAPH_MODE: 'live' }));
  cleanups.push(() => running.close());
  return running;
}

async function liveInstance(r: RunningRegistry, name: string, sdl: string, startedAt = new Date()) {
  const subgraph = await startSubgraph(name, sdl);
  cleanups.push(() => subgraph.close());
  const id = await registerOk(r.url, registrationOf(subgraph, { startedAt: startedAt.toISOString() }));
  cleanups.push(keepAlive(r.url, id, name));
  await waitFor(async () => (await api.instance(r.url, id))?.health === 'healthy', WAIT, `${name} healthy`);
  return { id, subgraph };
}

async function supergraph(r: RunningRegistry): Promise<{ sdl: string; hash: string | null }> {
  const response = await fetch(`${r.url}/v1/supergraph`);
  return { sdl: await response.text(), hash: response.headers.get('x-supergraph-hash') };
}

describe('live composition', () => {
  it('composes from the files at start, then from the SDL a healthy instance serves', async () => {
    const r = await liveRegistry();
    const initial = await supergraph(r);
    expect(initial.sdl).not.toContain('price');
    expect((await api.table(r.url)).supergraph).toEqual({ hash: initial.hash, mode: 'live' });

    const products = await liveInstance(r, 'products', PRODUCTS_WITH_PRICE_SDL);
    await waitFor(async () => (await supergraph(r)).sdl.includes('price'), WAIT, 'the new field composed');
    const composed = await supergraph(r);
    expect(composed.hash).not.toBe(initial.hash);
    expect((await api.table(r.url)).supergraph).toEqual({ hash: composed.hash, mode: 'live' });
    await waitFor(
      async () => routedIds(await api.table(r.url), 'products').includes(products.id),
      WAIT,
      'the instance routed',
    );
    const status = await api.status(r.url);
    expect(status.composition.lastAttempt?.ok).toBe(true);
    expect(status.composition.served?.sources).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ service: 'products', from: 'instance', instanceId: products.id }),
        expect.objectContaining({ service: 'reviews', from: 'file' }),
      ]),
    );
  });

  it('keeps the last good supergraph when a new SDL breaks composition, reports the failure, routes around it', async () => {
    const r = await liveRegistry();
    const products = await liveInstance(r, 'products', PRODUCTS_WITH_PRICE_SDL);
    await waitFor(
      async () => (await supergraph(r)).sdl.includes('price'),
      WAIT,
      'the first live composition',
    );
    const good = await supergraph(r);

    const breaking = await liveInstance(r, 'reviews', REVIEWS_BREAKING_SDL);
    await waitFor(
      async () => (await api.status(r.url)).composition.lastAttempt?.ok === false,
      WAIT,
      'the failed composition reported',
    );
    const status = await api.status(r.url);
    expect(status.composition.lastAttempt?.errors.join('\n')).toMatch(/Product\.name/);
    expect(status.composition.served?.hash).toBe(good.hash);
    expect(await supergraph(r)).toEqual(good);
    expect((await api.table(r.url)).supergraph?.hash).toBe(good.hash);
    expect(await api.instance(r.url, breaking.id)).toMatchObject({
      health: 'healthy',
      schema: 'mismatch',
      routable: false,
    });
    expect(routedIds(await api.table(r.url), 'products')).toEqual([products.id]);
    const metrics = await (await fetch(`${r.url}/metrics`)).text();
    expect(metrics).toContain('aiva_supergraph_compositions_total{outcome="failed"} 1');

    // A newer instance with a good SDL composes again; the breaking one stays out.
    const fixed = await liveInstance(r, 'reviews', REVIEWS_SDL, new Date(Date.now() + 1_000));
    await waitFor(
      async () => (await api.status(r.url)).composition.lastAttempt?.ok === true,
      WAIT,
      'a good composition again',
    );
    await waitFor(
      async () => routedIds(await api.table(r.url), 'reviews').includes(fixed.id),
      WAIT,
      'the fixed instance routed',
    );
    expect(routedIds(await api.table(r.url), 'reviews')).toEqual([fixed.id]);
  });

  it('composes a registered subgraph supergraph.yaml does not name, routed at its instance', async () => {
    const r = await liveRegistry();
    const inventory = await liveInstance(r, 'inventory', INVENTORY_SDL);
    await waitFor(async () => (await supergraph(r)).sdl.includes('stock'), WAIT, 'inventory composed');
    expect((await supergraph(r)).sdl).toContain(`${inventory.subgraph.url}/graphql`);
    await waitFor(
      async () => routedIds(await api.table(r.url), 'inventory').includes(inventory.id),
      WAIT,
      'inventory routed',
    );
  });
});
