import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type FileStorage,
  InvalidStorageKeyError,
  StorageNotFoundError,
  StorageRangeError,
} from '../src/storage/index.js';

/** A fresh, empty storage and how to dispose of it (and of whatever it stored). */
export interface OpenedStorage {
  storage: FileStorage;
  cleanup(): Promise<void>;
}

/** Reads a stream to its end. */
export async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A stream of `data` in chunks of `chunkSize` bytes, like a request body. */
function streamOf(data: Buffer, chunkSize = 64 * 1024): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunkSize) chunks.push(data.subarray(i, i + chunkSize));
  return Readable.from(chunks);
}

const OWNER = '0190d7a4-7d3c-7b3e-8f00-0123456789ab';
const HASH = 'a'.repeat(64);

const BAD_KEYS = [
  '',
  '/owners/x/original',
  '../escape',
  'owners/../../escape',
  'owners/./x',
  'owners//x',
  'owners/x/',
  'owners\\x',
  'owners/x y',
  'owners/ü',
  'owners/x~meta',
  `owners/${'x'.repeat(600)}`,
];

export interface StorageContractOptions {
  /**
   * Why the server behind the adapter cannot show that concurrent writes of one key leave one whole object, when
   * it cannot: the case is then left out, and the reason printed. (s3rver writes an object in place, so two PUTs
   * of one key interleave their bytes; S3 itself replaces objects atomically.)
   */
  noAtomicPuts?: string;
}

/**
 * The behaviour every FileStorage adapter must have. `open` gives a fresh, empty storage before each test;
 * `cleanup` runs after it.
 */
export function storageContract(
  name: string,
  open: () => Promise<OpenedStorage>,
  options: StorageContractOptions = {},
): void {
  if (options.noAtomicPuts) {
    console.warn(
      `[FileStorage contract: ${name}] concurrent puts of one key not checked: ${options.noAtomicPuts}`,
    );
  }
  describe(`FileStorage contract: ${name}`, { timeout: 60_000 }, () => {
    let opened: OpenedStorage;
    let storage: FileStorage;
    let work: string;

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'aiva-storage-contract-'));
    });
    afterAll(async () => {
      await rm(work, { recursive: true, force: true });
    });
    beforeEach(async () => {
      opened = await open();
      storage = opened.storage;
    });
    afterEach(async () => {
      await storage.close();
      await opened.cleanup();
    });

    it('answers ping', async () => {
      await expect(storage.ping()).resolves.toBeUndefined();
    });

    it('round-trips a Buffer and keeps its content type', async () => {
      const key = `owners/${OWNER}/${HASH}/original`;
      const data = randomBytes(10_000);
      await expect(storage.put(key, data, { contentType: 'image/png' })).resolves.toEqual({ size: 10_000 });
      const got = await storage.get(key);
      expect(got.size).toBe(10_000);
      expect(got.contentType).toBe('image/png');
      expect(got.range).toBeUndefined();
      expect((await readAll(got.body)).equals(data)).toBe(true);
    });

    it('round-trips a streamed body larger than 5 MiB (multipart on S3)', async () => {
      const key = `owners/${OWNER}/${HASH}/large`;
      const data = randomBytes(5 * 1024 * 1024 + 123_457);
      await expect(storage.put(key, streamOf(data), { contentType: 'video/mp4' })).resolves.toEqual({
        size: data.length,
      });
      const got = await storage.get(key);
      expect(got.size).toBe(data.length);
      expect(got.contentType).toBe('video/mp4');
      expect(sha256(await readAll(got.body))).toBe(sha256(data));
    });

    it('round-trips an empty body', async () => {
      const key = 'text/empty.txt';
      await expect(storage.put(key, Buffer.alloc(0), { contentType: 'text/plain' })).resolves.toEqual({
        size: 0,
      });
      const got = await storage.get(key);
      expect(got.size).toBe(0);
      expect((await readAll(got.body)).length).toBe(0);
    });

    it('serves byte ranges, clamping the end and refusing a start past the end', async () => {
      const key = `owners/${OWNER}/${HASH}/original`;
      const data = randomBytes(1000);
      await storage.put(key, data, { contentType: 'audio/mpeg' });

      const middle = await storage.get(key, { start: 100, end: 199 });
      expect(middle.size).toBe(1000);
      expect(middle.contentType).toBe('audio/mpeg');
      expect(middle.range).toEqual({ start: 100, end: 199 });
      expect((await readAll(middle.body)).equals(data.subarray(100, 200))).toBe(true);

      const single = await storage.get(key, { start: 0, end: 0 });
      expect((await readAll(single.body)).equals(data.subarray(0, 1))).toBe(true);

      const tail = await storage.get(key, { start: 900, end: 5000 });
      expect(tail.range).toEqual({ start: 900, end: 999 });
      expect((await readAll(tail.body)).equals(data.subarray(900))).toBe(true);

      await expect(storage.get(key, { start: 1000, end: 1100 })).rejects.toBeInstanceOf(StorageRangeError);
      await expect(storage.get(key, { start: 10, end: 5 })).rejects.toBeInstanceOf(StorageRangeError);
    });

    it('stats absent and present objects', async () => {
      const key = `owners/${OWNER}/${HASH}/thumbnail.webp`;
      await expect(storage.stat(key)).resolves.toBeUndefined();
      await storage.put(key, Buffer.from('webp bytes'), { contentType: 'image/webp' });
      await expect(storage.stat(key)).resolves.toEqual({ size: 10, contentType: 'image/webp' });
    });

    it('replaces an object on overwrite, type included', async () => {
      const key = `text/${OWNER}.txt`;
      await storage.put(key, Buffer.from('first version, longer'), { contentType: 'text/plain' });
      await storage.put(key, streamOf(Buffer.from('second')), { contentType: 'text/markdown' });
      const got = await storage.get(key);
      expect(got.contentType).toBe('text/markdown');
      expect((await readAll(got.body)).toString()).toBe('second');
      await expect(storage.stat(key)).resolves.toEqual({ size: 6, contentType: 'text/markdown' });
    });

    it('deletes objects, and deleting an absent one is fine', async () => {
      const key = `owners/${OWNER}/${HASH}/original`;
      await storage.put(key, Buffer.from('x'), { contentType: 'text/plain' });
      await storage.delete(key);
      await expect(storage.stat(key)).resolves.toBeUndefined();
      await expect(storage.get(key)).rejects.toBeInstanceOf(StorageNotFoundError);
      await expect(storage.delete(key)).resolves.toBeUndefined();
      await expect(storage.delete('owners/never/was')).resolves.toBeUndefined();
    });

    it('deletes every key under a prefix and nothing else', async () => {
      const keep = [
        'owners/a10/h1/original',
        'owners/a1-b/h1/original',
        'owners/b/a1/original',
        'text/a1.txt',
      ];
      const remove = ['owners/a1/h1/original', 'owners/a1/h1/thumbnail.webp', 'owners/a1/h2/original'];
      for (const key of [...keep, ...remove]) {
        await storage.put(key, Buffer.from(key), { contentType: 'text/plain' });
      }
      await expect(storage.deletePrefix('owners/a1')).resolves.toBe(3);
      for (const key of remove) await expect(storage.stat(key)).resolves.toBeUndefined();
      for (const key of keep) {
        expect((await readAll((await storage.get(key)).body)).toString()).toBe(key);
      }
      await expect(storage.deletePrefix('owners/a1/')).resolves.toBe(0);
      await expect(storage.deletePrefix('owners/none')).resolves.toBe(0);
      await expect(storage.deletePrefix('owners/b/a1/original')).resolves.toBe(0);
      await expect(storage.stat('owners/b/a1/original')).resolves.toBeDefined();
    });

    it('lists the keys under a prefix with their sizes, sorted, and nothing else', async () => {
      const inside = {
        'uploads/u1/info.json': 'info',
        'uploads/u1/0000000000000010': 'second part',
        'uploads/u1/0000000000000000': 'first part',
        'uploads/u1/deeper/x': 'x',
      };
      const outside = ['uploads/u10/0000000000000000', 'uploads/u1-b/info.json', 'uploads/other'];
      for (const [key, body] of Object.entries(inside)) {
        await storage.put(key, Buffer.from(body), { contentType: 'text/plain' });
      }
      for (const key of outside) await storage.put(key, Buffer.from(key), { contentType: 'text/plain' });
      const expected = [
        { key: 'uploads/u1/0000000000000000', size: 10 },
        { key: 'uploads/u1/0000000000000010', size: 11 },
        { key: 'uploads/u1/deeper/x', size: 1 },
        { key: 'uploads/u1/info.json', size: 4 },
      ];
      await expect(storage.list('uploads/u1')).resolves.toEqual(expected);
      await expect(storage.list('uploads/u1/')).resolves.toEqual(expected);
      await expect(storage.list('uploads/none')).resolves.toEqual([]);
      await expect(storage.list('uploads/other')).resolves.toEqual([]);
      await storage.delete('uploads/u1/deeper/x');
      await expect(storage.list('uploads/u1')).resolves.toHaveLength(3);
      for (const prefix of ['', '/', '../uploads', 'uploads/../..', 'uploads//u1']) {
        await expect(storage.list(prefix), prefix).rejects.toBeInstanceOf(InvalidStorageKeyError);
      }
    });

    it('rejects invalid keys before touching the storage', async () => {
      const file = join(work, 'valid-source');
      await writeFile(file, 'x');
      for (const key of BAD_KEYS) {
        const type = { contentType: 'text/plain' };
        await expect(storage.put(key, Buffer.from('x'), type), key).rejects.toBeInstanceOf(
          InvalidStorageKeyError,
        );
        await expect(storage.putFile(key, file, type), key).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.get(key), key).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.stat(key), key).rejects.toBeInstanceOf(InvalidStorageKeyError);
        await expect(storage.download(key, join(work, 'out')), key).rejects.toBeInstanceOf(
          InvalidStorageKeyError,
        );
        await expect(storage.delete(key), key).rejects.toBeInstanceOf(InvalidStorageKeyError);
      }
      for (const prefix of ['', '/', '../owners', 'owners/../..', 'owners//a']) {
        await expect(storage.deletePrefix(prefix), prefix).rejects.toBeInstanceOf(InvalidStorageKeyError);
      }
    });

    it('throws StorageNotFoundError for an absent key', async () => {
      await expect(storage.get('owners/none/none/original')).rejects.toBeInstanceOf(StorageNotFoundError);
      await expect(storage.get('owners/none/none/original', { start: 0, end: 10 })).rejects.toBeInstanceOf(
        StorageNotFoundError,
      );
      await expect(
        storage.download('owners/none/none/original', join(work, 'absent')),
      ).rejects.toBeInstanceOf(StorageNotFoundError);
    });

    it('downloads an object to a file and stores a local file', async () => {
      const data = randomBytes(300_000);
      const source = join(work, `source-${randomBytes(4).toString('hex')}`);
      await writeFile(source, data);
      await expect(
        storage.putFile('owners/o/h/poster.webp', source, { contentType: 'image/webp' }),
      ).resolves.toEqual({ size: data.length });
      await expect(storage.stat('owners/o/h/poster.webp')).resolves.toEqual({
        size: data.length,
        contentType: 'image/webp',
      });
      const target = join(work, `target-${randomBytes(4).toString('hex')}`);
      await storage.download('owners/o/h/poster.webp', target);
      expect((await readFile(target)).equals(data)).toBe(true);
    });

    if (!options.noAtomicPuts) {
      it('leaves one whole value after concurrent puts of the same key', async () => {
        const key = `owners/${OWNER}/${HASH}/original`;
        const bodies = Array.from({ length: 6 }, () => randomBytes(300_000));
        await Promise.all(
          bodies.map((body, i) =>
            storage.put(key, streamOf(body, 16 * 1024), { contentType: `image/x-${i}` }),
          ),
        );
        const got = await storage.get(key);
        const stored = await readAll(got.body);
        expect(got.size).toBe(300_000);
        expect(bodies.map(sha256)).toContain(sha256(stored));
      });
    }
  });
}
