import { describe, expect, it } from 'vitest';
import { createCache } from '../src/cache/create-cache.js';
import { createMemoryCache } from '../src/cache/memory.js';
import { cacheContract } from '../src/testing/index.js';

cacheContract('memory', async () => createMemoryCache());

describe('memory cache specifics', () => {
  it('evicts the least recently used entry beyond maxEntries', async () => {
    const cache = createMemoryCache({ maxEntries: 2 });
    await cache.set('a', '1');
    await cache.set('b', '2');
    expect(await cache.get('a')).toBe('1'); // a is now more recent than b
    await cache.set('c', '3');
    expect(await cache.get('b')).toBeNull();
    expect(await cache.get('a')).toBe('1');
    expect(await cache.get('c')).toBe('3');
  });

  it('follows the injected clock for TTLs and windows', async () => {
    let now = 1_000_000;
    const cache = createMemoryCache({ now: () => now });
    await cache.set('k', 'v', 10);
    expect(await cache.increment('n', 60)).toEqual({ value: 1, ttlMs: 60_000 });
    now += 9_999;
    expect(await cache.get('k')).toBe('v');
    expect(await cache.increment('n', 60)).toEqual({ value: 2, ttlMs: 50_001 });
    now += 1;
    expect(await cache.get('k')).toBeNull();
    now += 50_000;
    expect(await cache.increment('n', 60)).toEqual({ value: 1, ttlMs: 60_000 });
  });

  it('starts a window when incrementing a key that had no expiry', async () => {
    const cache = createMemoryCache();
    await cache.set('n', '41');
    const result = await cache.increment('n', 5);
    expect(result.value).toBe(42);
    expect(result.ttlMs).toBe(5_000);
  });

  it('rejects invalid TTLs and sizes', async () => {
    const cache = createMemoryCache();
    await expect(cache.set('k', 'v', -1)).rejects.toThrow(RangeError);
    await expect(cache.increment('k', 0)).rejects.toThrow(RangeError);
    expect(() => createMemoryCache({ maxEntries: 0 })).toThrow(RangeError);
  });

  it('refuses use after close', async () => {
    const cache = createMemoryCache();
    await cache.close();
    await expect(cache.get('k')).rejects.toThrow(/closed/);
  });

  it('createCache without a URL gives a memory cache', async () => {
    const cache = await createCache({});
    expect(cache.kind).toBe('memory');
    await cache.close();
  });
});
