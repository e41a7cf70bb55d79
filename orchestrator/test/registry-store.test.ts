import { randomUUID } from 'node:crypto';
import { closeRedis, connectRedis, type RedisClient } from '@aiva/shared';
import { describeInfra, waitFor } from '@aiva/shared/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createMemoryRegistryStore,
  createRedisRegistryStore,
  type InstanceRecord,
  type RegistryStore,
} from '../src/registry/index.js';
import { emptyTraffic, initialHealth } from '../src/registry/instance.js';

// The RegistryStore contract, run against every adapter that is reachable: memory always, Redis when a server
// answers at REDIS_URL (default redis://127.0.0.1:6379; required under CI=true).

function record(id: string, overrides: Partial<InstanceRecord> = {}): InstanceRecord {
  const now = new Date();
  return {
    service: 'products',
    kind: 'subgraph',
    instanceId: id,
    url: 'http://127.0.0.1:4001',
    graphqlPath: '/graphql',
    version: '1.2.3',
    startedAt: now.toISOString(),
    routes: [{ prefix: '/products/files', websocket: true }],
    slot: 'products#1',
    pid: 4242,
    source: 'register',
    registeredAt: now.toISOString(),
    sdlHash: 'a'.repeat(64),
    lastHeartbeat: now.toISOString(),
    load: null,
    health: initialHealth(now),
    traffic: emptyTraffic(),
    ...overrides,
  };
}

interface StoreFixture {
  /** A fresh, empty store; `peer` opens a second one on the same data (a replica). */
  open(): Promise<{ store: RegistryStore; peer: () => Promise<RegistryStore> }>;
  /** A shared store: leases go to one owner at a time. */
  shared: boolean;
}

function registryStoreContract(name: string, fixture: StoreFixture): void {
  describe(name, () => {
    let store: RegistryStore;
    let peer: () => Promise<RegistryStore>;
    const opened: RegistryStore[] = [];

    beforeAll(async () => {
      ({ store, peer } = await fixture.open());
      opened.push(store);
    });
    afterAll(async () => {
      for (const s of opened) await s.close();
    });

    it('puts, gets and lists records, with their SDL', async () => {
      const id = `put-${randomUUID()}`;
      const original = record(id, { load: { inflight: 2, requestsTotal: 9 } });
      await store.put(original, 'type Query { a: Int }');
      expect(await store.get(id)).toEqual(original);
      expect((await store.list()).find((r) => r.instanceId === id)).toEqual(original);
      expect(await store.sdlOf(id)).toBe('type Query { a: Int }');
      expect(await store.get(`missing-${randomUUID()}`)).toBeUndefined();
    });

    it('replaces a record put again under the same id', async () => {
      const id = `replace-${randomUUID()}`;
      await store.put(record(id), 'type Query { a: Int }');
      const replacement = record(id, { url: 'http://127.0.0.1:4999', sdlHash: null });
      await store.put(replacement);
      expect(await store.get(id)).toEqual(replacement);
      expect(await store.sdlOf(id)).toBeUndefined();
      expect((await store.list()).filter((r) => r.instanceId === id)).toHaveLength(1);
    });

    it('updates parts of a record, and says so when the record is not there', async () => {
      const id = `update-${randomUUID()}`;
      await store.put(record(id));
      const health = { ...initialHealth(new Date()), state: 'healthy' as const, reason: null, successes: 1 };
      const at = new Date(Date.now() + 1000).toISOString();
      expect(
        await store.update(id, { health, lastHeartbeat: at, load: { inflight: 1, requestsTotal: 3 } }),
      ).toBe(true);
      expect(await store.update(id, { sdlHash: 'b'.repeat(64) }, 'type Query { b: Int }')).toBe(true);
      expect(await store.get(id)).toMatchObject({
        health,
        lastHeartbeat: at,
        load: { inflight: 1, requestsTotal: 3 },
        sdlHash: 'b'.repeat(64),
        slot: 'products#1',
      });
      expect(await store.sdlOf(id)).toBe('type Query { b: Int }');

      const missing = `missing-${randomUUID()}`;
      expect(await store.update(missing, { lastHeartbeat: at })).toBe(false);
      expect(await store.get(missing)).toBeUndefined();
    });

    it("adds reports to the traffic totals, keeping each reporter's latest figures and forgetting silent ones", async () => {
      const id = `traffic-${randomUUID()}`;
      await store.put(record(id));
      const sample = (reporter: string, at: number, forgetBefore = 0) => ({
        requests: 10,
        errors: 2,
        connectionFailures: 1,
        timeouts: 1,
        latencySecondsSum: 0.25,
        reporter,
        report: { breaker: 'half-open' as const, requestRate: 5, windowMs: 2_000, at },
        forgetBefore,
      });
      expect(await store.addTraffic(id, sample('gateway-a', 1_000))).toBe(true);
      expect(await store.addTraffic(id, sample('gateway-b', 2_000))).toBe(true);
      expect(await store.addTraffic(id, sample('gateway-b', 3_000, 1_500))).toBe(true);
      const traffic = (await store.get(id))!.traffic;
      expect(traffic).toMatchObject({ requests: 30, errors: 6, connectionFailures: 3, timeouts: 3 });
      expect(traffic.latencySecondsSum).toBeCloseTo(0.75);
      expect(traffic.reporters).toEqual({
        'gateway-b': { breaker: 'half-open', requestRate: 5, windowMs: 2_000, at: 3_000 },
      });
      expect(await store.addTraffic(`missing-${randomUUID()}`, sample('gateway-a', 1))).toBe(false);
    });

    it('removes a record once', async () => {
      const id = `remove-${randomUUID()}`;
      await store.put(record(id));
      expect(await store.remove(id)).toBe(true);
      expect(await store.remove(id)).toBe(false);
      expect(await store.get(id)).toBeUndefined();
      expect((await store.list()).some((r) => r.instanceId === id)).toBe(false);
    });

    it('moves the version on every write', async () => {
      const id = `version-${randomUUID()}`;
      const versions = [await store.version()];
      await store.put(record(id));
      versions.push(await store.version());
      await store.update(id, { lastHeartbeat: new Date().toISOString() });
      versions.push(await store.version());
      await store.remove(id);
      versions.push(await store.version());
      expect(new Set(versions).size).toBe(versions.length);
    });

    it('shares its records with a second store on the same data', async () => {
      const other = await peer();
      if (other !== store) opened.push(other);
      const id = `peer-${randomUUID()}`;
      await store.put(record(id), 'type Query { p: Int }');
      expect(await other.get(id)).toEqual(await store.get(id));
      expect(await other.sdlOf(id)).toBe('type Query { p: Int }');
    });

    if (fixture.shared) {
      it('grants the lease to one owner at a time, until it lapses or is released', async () => {
        const a = `a-${randomUUID()}`;
        const b = `b-${randomUUID()}`;
        expect(await store.holdLease(a, 300)).toBe(true);
        expect(await store.holdLease(b, 300)).toBe(false);
        expect(await store.holdLease(a, 300)).toBe(true);
        await waitFor(() => store.holdLease(b, 5_000), 5_000, 'the lease to lapse and go to b');
        expect(await store.holdLease(a, 300)).toBe(false);
        await store.releaseLease(a);
        expect(await store.holdLease(a, 300)).toBe(false);
        await store.releaseLease(b);
        expect(await store.holdLease(a, 300)).toBe(true);
        await store.releaseLease(a);
      });
    } else {
      it('always grants the lease (one process)', async () => {
        expect(await store.holdLease('anyone', 100)).toBe(true);
        expect(await store.holdLease('someone-else', 100)).toBe(true);
      });
    }
  });
}

registryStoreContract('memory registry store', {
  shared: false,
  async open() {
    const store = createMemoryRegistryStore();
    return { store, peer: async () => store };
  },
});

await describeInfra(
  'redis registry store',
  { envVar: 'REDIS_URL', defaultUrl: 'redis://127.0.0.1:6379' },
  (url) => {
    const prefix = `aiva:test:registry:${randomUUID()}:`;
    const clients: RedisClient[] = [];
    const open = async (recordTtlMs = 60_000) => {
      const client = await connectRedis({ url });
      clients.push(client);
      return createRedisRegistryStore({ client, prefix, recordTtlMs });
    };

    afterAll(async () => {
      const client = clients[0] ?? (await connectRedis({ url }));
      for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) {
        if (keys.length > 0) await client.del(keys);
      }
      for (const c of new Set([...clients, client])) await closeRedis(c);
    });

    registryStoreContract('contract', {
      shared: true,
      async open() {
        return { store: await open(), peer: () => open() };
      },
    });

    describe('redis specifics', () => {
      let store: RegistryStore;
      beforeAll(async () => {
        store = await open(300);
      });
      afterEach(async () => {
        for (const r of await store.list()) await store.remove(r.instanceId);
      });

      it('expires a record its orchestrator stopped writing, and forgets its id', async () => {
        const id = `ghost-${randomUUID()}`;
        await store.put(record(id));
        expect(await store.get(id)).toBeDefined();
        await waitFor(async () => (await store.get(id)) === undefined, 5_000, 'the record to expire');
        expect((await store.list()).some((r) => r.instanceId === id)).toBe(false);
        expect(await clients[clients.length - 1]!.sIsMember(`${prefix}instances`, id)).toBe(0);
      });

      it('keeps every key under the prefix', async () => {
        const id = `keys-${randomUUID()}`;
        await store.put(record(id), 'type Query { k: Int }');
        await store.holdLease('keys-test', 1_000);
        const client = clients[0]!;
        const keys: string[] = [];
        for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 }))
          keys.push(...batch);
        expect(keys.sort()).toEqual(
          expect.arrayContaining([
            `${prefix}instance:${id}`,
            `${prefix}instances`,
            `${prefix}version`,
            `${prefix}lease`,
          ]),
        );
        await store.releaseLease('keys-test');
      });
    });
  },
);
