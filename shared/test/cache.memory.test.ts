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

  it('evicts the least recently used entries beyond maxBytes (keys and values, UTF-8)', async () => {
    const cache = createMemoryCache({ maxBytes: 30 });
    await cache.set('a', '1'.repeat(9)); // 10 bytes
    await cache.set('b', '2'.repeat(9)); // 20
    await cache.set('c', '3'.repeat(9)); // 30: at the bound
    expect(await cache.get('a')).toBe('1'.repeat(9)); // a is now more recent than b
    await cache.set('d', 'é'.repeat(2)); // 5 bytes: 35 > 30, so b goes
    expect(await cache.get('b')).toBeNull();
    expect(await cache.get('a')).not.toBeNull();
    expect(await cache.get('c')).not.toBeNull();
    expect(await cache.get('d')).toBe('éé');
    // One large value takes the room of several small ones.
    await cache.set('e', '5'.repeat(24)); // 25 bytes: only d (5) can stay with it
    expect(await cache.get('a')).toBeNull();
    expect(await cache.get('c')).toBeNull();
    expect(await cache.get('d')).toBe('éé');
    expect(await cache.get('e')).toBe('5'.repeat(24));
  });

  it('does not keep an entry larger than maxBytes, nor the older value of its key', async () => {
    const cache = createMemoryCache({ maxBytes: 16 });
    await cache.set('k', 'small');
    await cache.set('other', 'x');
    await cache.set('k', 'x'.repeat(16));
    expect(await cache.get('k')).toBeNull();
    expect(await cache.get('other')).toBe('x');
  });

  it('frees the bytes of deleted, overwritten and expired entries', async () => {
    let now = 0;
    const cache = createMemoryCache({ maxBytes: 20, now: () => now });
    await cache.set('a', '1'.repeat(9));
    await cache.set('b', '2'.repeat(9), 1);
    await cache.delete('a');
    await cache.set('b', '3'.repeat(9), 1); // overwritten: still 10 bytes
    now += 1_000; // b expires
    expect(await cache.get('b')).toBeNull();
    await cache.set('c', '4'.repeat(9));
    await cache.set('d', '5'.repeat(9));
    expect(await cache.get('c')).toBe('4'.repeat(9));
    expect(await cache.get('d')).toBe('5'.repeat(9));
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
    expect(() => createMemoryCache({ maxBytes: 0 })).toThrow(RangeError);
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
