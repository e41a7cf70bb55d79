import { randomUUID } from 'node:crypto';
import { closeRedis, connectRedis } from '@aiva/shared';
import { describeInfra, waitFor } from '@aiva/shared/testing';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  api,
  authOf,
  keepAlive,
  PRODUCTS_SDL,
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

// The registry in Redis: replicas on one Redis agree, and a restarted orchestrator has its instances back.
// Each test uses its own key prefix; every key is deleted afterwards.

const WAIT = 10_000;

await describeInfra(
  'registry on redis',
  { envVar: 'REDIS_URL', defaultUrl: 'redis://127.0.0.1:6379' },
  (url) => {
    let project: TestProject;
    const prefixes: string[] = [];
    const cleanups: Array<() => Promise<void> | void> = [];

    beforeAll(() => {
      project = writeProject();
    });
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });
    afterAll(async () => {
      project.remove();
      const client = await connectRedis({ url });
      for (const prefix of prefixes) {
        for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) {
          if (keys.length > 0) await client.del(keys);
        }
      }
      await closeRedis(client);
    });

    function newPrefix(): string {
      const prefix = `aiva:test:registry-app:${randomUUID()}:`;
      prefixes.push(prefix);
      return prefix;
    }

    async function replica(prefix: string): Promise<RunningRegistry> {
      const running = await startRegistry(
        testConfig(project, { REDIS_URL: url, ORCHESTRATOR_REDIS_PREFIX: prefix }),
        { tuning: { syncIntervalMs: 100, leaseTtlMs: 1_000 } },
      );
      cleanups.push(() => running.close());
      return running;
    }

    it('two orchestrators on one Redis see the same instances and the same routing table', async () => {
      const prefix = newPrefix();
      const a = await replica(prefix);
      const b = await replica(prefix);
      const products = await startSubgraph('products', PRODUCTS_SDL);
      cleanups.push(() => products.close());

      const body = registrationOf(products);
      await registerOk(a.url, body);
      cleanups.push(keepAlive(b.url, body.instanceId, 'products'));
      for (const r of [a, b]) {
        await waitFor(
          async () => routedIds(await api.table(r.url), 'products').includes(body.instanceId),
          WAIT,
          'the instance routed by both',
        );
      }
      expect((await api.table(a.url)).etag).toBe((await api.table(b.url)).etag);
      expect((await api.instance(b.url, body.instanceId))?.health).toBe('healthy');
      expect((await api.status(a.url)).orchestrator.store).toBe('redis');
      const leaders = [
        (await api.status(a.url)).orchestrator.leader,
        (await api.status(b.url)).orchestrator.leader,
      ];
      expect(leaders.filter(Boolean)).toHaveLength(1);

      // A write at one replica reaches the other's long-poll.
      const etag = (await api.table(a.url)).etag;
      const polling = fetch(`${a.url}/v1/routing?wait=20`, { headers: { 'if-none-match': `"${etag}"` } });
      expect((await api.deregister(b.url, body.instanceId, authOf('products'))).status).toBe(204);
      const changed = await polling;
      expect(changed.status).toBe(200);
      expect(routedIds((await changed.json()) as never, 'products')).toEqual([]);
      await waitFor(async () => (await api.instances(a.url)).length === 0, WAIT, 'the instance gone from a');
    });

    it('a restarted orchestrator has its instances back from Redis, healthy and routed', async () => {
      const prefix = newPrefix();
      const products = await startSubgraph('products', PRODUCTS_SDL);
      cleanups.push(() => products.close());
      const first = await startRegistry(
        testConfig(project, { REDIS_URL: url, ORCHESTRATOR_REDIS_PREFIX: prefix }),
        { tuning: { syncIntervalMs: 100, leaseTtlMs: 1_000 } },
      );
      cleanups.push(() => first.close());
      const body = registrationOf(products, { slot: 'products#1' });
      await registerOk(first.url, body);
      await waitFor(
        async () => routedIds(await api.table(first.url), 'products').includes(body.instanceId),
        WAIT,
        'the instance routed',
      );
      const table = await api.table(first.url);
      await first.close();

      const second = await replica(prefix);
      expect(await api.instance(second.url, body.instanceId)).toMatchObject({
        health: 'healthy',
        routable: true,
        slot: 'products#1',
      });
      expect((await api.table(second.url)).etag).toBe(table.etag);
      expect((await api.heartbeat(second.url, body.instanceId, authOf('products'))).status).toBe(204);
    });
  },
);
