import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Cache } from '../src/cache/cache.js';
import { createCache } from '../src/cache/create-cache.js';
import { createSqliteCache } from '../src/cache/sqlite.js';
import { cacheContract, waitFor } from '../src/testing/index.js';
import { type Peer, startPeer } from './fixtures/peer.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const dir = mkdtempSync(join(tmpdir(), 'aiva-sqlite-cache-'));
let files = 0;
const freshFile = (label: string) => join(dir, `${label}-${++files}.db`);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

cacheContract('sqlite', async (keyPrefix) =>
  createSqliteCache({ file: join(dir, 'contract.db'), keyPrefix }),
);

describe('SQLite cache specifics', () => {
  it('evicts the least recently written entry beyond maxEntries (reads do not count)', async () => {
    const cache = createSqliteCache({ file: freshFile('evict'), maxEntries: 2 });
    await cache.set('a', '1');
    await cache.set('b', '2');
    expect(await cache.get('a')).toBe('1'); // a read: a stays the oldest write
    await cache.set('c', '3');
    expect(await cache.get('a')).toBeNull();
    expect(await cache.get('b')).toBe('2');
    await cache.set('b', '2 again'); // a write: b is now newer than c
    await cache.set('d', '4');
    expect(await cache.get('c')).toBeNull();
    expect(await cache.get('b')).toBe('2 again');
    expect(await cache.get('d')).toBe('4');
    await cache.close();
  });

  it('drops expired entries before live ones when over maxEntries', async () => {
    let now = 1_000_000;
    const cache = createSqliteCache({ file: freshFile('evict-expired'), maxEntries: 2, now: () => now });
    await cache.set('old-but-lasting', 'x');
    await cache.set('short', 'y', 1);
    now += 1_001;
    await cache.set('new', 'z');
    expect(await cache.get('old-but-lasting')).toBe('x');
    expect(await cache.get('new')).toBe('z');
    await cache.close();
  });

  it('counts entries per prefix: one prefix filling up does not evict another', async () => {
    const file = freshFile('prefixes');
    const small = createSqliteCache({ file, keyPrefix: 'small:', maxEntries: 1 });
    const other = createSqliteCache({ file, keyPrefix: 'other:', maxEntries: 1 });
    await other.set('k', 'kept');
    await small.set('a', '1');
    await small.set('b', '2');
    expect(await small.get('a')).toBeNull();
    expect(await small.get('b')).toBe('2');
    expect(await other.get('k')).toBe('kept');
    await Promise.all([small.close(), other.close()]);
  });

  it('follows the injected clock for TTLs and windows, to the millisecond', async () => {
    let now = 1_000_000;
    const cache = createSqliteCache({ file: freshFile('clock'), now: () => now });
    await cache.set('k', 'v', 10);
    expect(await cache.increment('n', 60)).toEqual({ value: 1, ttlMs: 60_000 });
    expect(await cache.increment('fraction', 1.5)).toEqual({ value: 1, ttlMs: 1_500 });
    now += 9_999;
    expect(await cache.get('k')).toBe('v');
    expect(await cache.increment('n', 60)).toEqual({ value: 2, ttlMs: 50_001 });
    now += 1;
    expect(await cache.get('k')).toBeNull();
    expect(await cache.delete('k')).toBe(false); // expired counts as absent
    now += 50_000;
    expect(await cache.increment('n', 60)).toEqual({ value: 1, ttlMs: 60_000 });
    await cache.close();
  });

  it('starts a window when incrementing a key that had no expiry', async () => {
    const cache = createSqliteCache({ file: freshFile('window') });
    await cache.set('n', '41');
    const result = await cache.increment('n', 5);
    expect(result.value).toBe(42);
    expect(result.ttlMs).toBe(5_000);
    await cache.close();
  });

  it('rejects invalid TTLs and sizes, and use after close', async () => {
    const cache = createSqliteCache({ file: freshFile('invalid') });
    await expect(cache.set('k', 'v', -1)).rejects.toThrow(RangeError);
    await expect(cache.increment('k', 0)).rejects.toThrow(RangeError);
    await cache.set('float', '1.5');
    await expect(cache.increment('float', 5)).rejects.toThrow(/not an integer/);
    expect(() => createSqliteCache({ file: freshFile('invalid'), maxEntries: 0 })).toThrow(RangeError);
    await cache.close();
    await expect(cache.close()).resolves.toBeUndefined();
    await expect(cache.get('k')).rejects.toThrow(/closed/);
  });

  it('createCache with a file (and no Redis URL) gives a SQLite cache', async () => {
    const cache = await createCache({ file: freshFile('create') });
    expect(cache.kind).toBe('sqlite');
    await cache.close();
  });
});

describe('SQLite cache across processes', () => {
  let peer: Peer | undefined;
  let cache: Cache | undefined;

  afterEach(async () => {
    await peer?.stop();
    await cache?.close();
    peer = undefined;
    cache = undefined;
  });

  async function openBoth(label: string): Promise<{ cache: Cache; peer: Peer }> {
    const file = freshFile(label);
    cache = createSqliteCache({ file, keyPrefix: 'shared:' });
    peer = await startPeer();
    await peer.call('open-cache', { file, keyPrefix: 'shared:' });
    return { cache, peer };
  }

  it('increments one counter from two processes at once: the totals add up exactly', async () => {
    const { cache, peer } = await openBoth('counter');
    const times = 1_000;
    const theirs = peer.call<number[]>('increment-many', { key: 'hits', ttlSeconds: 60, times });
    await waitFor(() => peer.notes.some((n) => n.note === 'started'), 10_000, 'the peer to start');
    const mine: number[] = [];
    for (let i = 0; i < times; i++) mine.push((await cache.increment('hits', 60)).value);
    const all = [...mine, ...(await theirs)].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 2 * times }, (_, i) => i + 1));
    expect(await cache.get('hits')).toBe(String(2 * times));
  });

  it('reads in one process what the other wrote, and both see a TTL expire', async () => {
    const { cache, peer } = await openBoth('values');
    await cache.set('from-parent', 'hello', 1);
    await peer.call('cache', { method: 'set', args: ['from-peer', 'grüße 👋', 1] });
    expect(await peer.call('cache', { method: 'get', args: ['from-parent'] })).toBe('hello');
    expect(await cache.get('from-peer')).toBe('grüße 👋');

    // The window the peer's first increment started is not extended by ours.
    const first = await peer.call<{ value: number; ttlMs: number }>('cache', {
      method: 'increment',
      args: ['window', 1],
    });
    const second = await cache.increment('window', 1);
    expect(second.value).toBe(2);
    expect(second.ttlMs).toBeLessThanOrEqual(first.ttlMs);

    await sleep(1_150);
    for (const key of ['from-parent', 'from-peer', 'window']) {
      expect(await cache.get(key)).toBeNull();
      expect(await peer.call('cache', { method: 'get', args: [key] })).toBeNull();
    }
    expect(await peer.call('cache', { method: 'delete', args: ['from-parent'] })).toBe(false);
  });
});
