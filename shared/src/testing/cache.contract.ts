import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cache } from '../cache/cache.js';

export interface CacheContractOptions {
  /** A short TTL used by the expiry tests, in seconds (default 0.2). */
  shortTtlSeconds?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The Cache contract, run against every adapter. `makeCache` gets a key prefix unique to the run, so suites
 * against a shared server (Redis) do not see each other's keys; every key written is deleted afterwards.
 */
export function cacheContract(
  name: string,
  makeCache: (keyPrefix: string) => Promise<Cache>,
  options: CacheContractOptions = {},
): void {
  const shortTtl = options.shortTtlSeconds ?? 0.2;
  const shortTtlMs = shortTtl * 1000;
  const prefix = `contract:${randomUUID()}:`;
  const written = new Set<string>();
  let cache: Cache;

  const key = (label: string) => {
    const k = `${label}:${randomUUID().slice(0, 8)}`;
    written.add(k);
    return k;
  };

  describe(`Cache contract: ${name}`, () => {
    beforeAll(async () => {
      cache = await makeCache(prefix);
    });

    afterAll(async () => {
      if (!cache) return;
      try {
        await Promise.all([...written].map((k) => cache.delete(k)));
      } finally {
        await cache.close();
      }
    });

    it('gets, sets, overwrites and deletes', async () => {
      const k = key('basic');
      expect(await cache.get(k)).toBeNull();
      await cache.set(k, 'one');
      expect(await cache.get(k)).toBe('one');
      await cache.set(k, 'two');
      expect(await cache.get(k)).toBe('two');
      expect(await cache.delete(k)).toBe(true);
      expect(await cache.get(k)).toBeNull();
      expect(await cache.delete(k)).toBe(false);
    });

    it('keeps values exactly (unicode, empty, JSON)', async () => {
      const k = key('exact');
      for (const value of ['', 'grüße 👋', JSON.stringify({ a: [1, 'b'], c: null })]) {
        await cache.set(k, value);
        expect(await cache.get(k)).toBe(value);
      }
    });

    it('expires a key after its TTL and keeps one without TTL', async () => {
      const expiring = key('ttl');
      const lasting = key('no-ttl');
      await cache.set(expiring, 'soon gone', shortTtl);
      await cache.set(lasting, 'stays');
      expect(await cache.get(expiring)).toBe('soon gone');
      await sleep(shortTtlMs + 150);
      expect(await cache.get(expiring)).toBeNull();
      expect(await cache.get(lasting)).toBe('stays');
    });

    it('setIfAbsent sets only when the key is absent', async () => {
      const k = key('nx');
      expect(await cache.setIfAbsent(k, 'first', shortTtl)).toBe(true);
      expect(await cache.setIfAbsent(k, 'second', shortTtl)).toBe(false);
      expect(await cache.get(k)).toBe('first');
      await sleep(shortTtlMs + 150);
      expect(await cache.setIfAbsent(k, 'third')).toBe(true);
      expect(await cache.get(k)).toBe('third');
    });

    it('increments within a window that the first increment starts', async () => {
      const k = key('counter');
      const first = await cache.increment(k, shortTtl * 2);
      expect(first.value).toBe(1);
      expect(first.ttlMs).toBeGreaterThan(0);
      expect(first.ttlMs).toBeLessThanOrEqual(shortTtlMs * 2);
      await sleep(50);
      const second = await cache.increment(k, shortTtl * 2);
      expect(second.value).toBe(2);
      // later increments do not extend the window
      expect(second.ttlMs).toBeLessThan(first.ttlMs);
      expect(await cache.get(k)).toBe('2');
      await sleep(shortTtlMs * 2 + 150);
      const fresh = await cache.increment(k, shortTtl * 2);
      expect(fresh.value).toBe(1);
    });

    it('increments atomically under concurrency', async () => {
      const k = key('concurrent');
      const results = await Promise.all(Array.from({ length: 25 }, () => cache.increment(k, 30)));
      expect(results.map((r) => r.value).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 25 }, (_, i) => i + 1),
      );
    });

    it('refuses to increment a value that is not an integer', async () => {
      const k = key('not-a-number');
      await cache.set(k, 'abc', 30);
      await expect(cache.increment(k, 30)).rejects.toThrow();
    });

    it('isolates keys by prefix', async () => {
      const other = await makeCache(`${prefix}other:`);
      const k = key('isolated');
      try {
        await cache.set(k, 'mine', 30);
        expect(await other.get(k)).toBeNull();
        await other.set(k, 'theirs', 30);
        expect(await cache.get(k)).toBe('mine');
        expect(await other.get(k)).toBe('theirs');
        await other.delete(k);
      } finally {
        await other.close();
      }
    });

    it('answers ping', async () => {
      await expect(cache.ping()).resolves.toBeUndefined();
    });
  });
}
