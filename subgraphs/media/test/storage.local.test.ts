import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createStorage, LocalFileStorage } from '../src/storage/index.js';
import { storageContract } from './storage.contract.js';

storageContract('local directory', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'aiva-storage-local-'));
  return {
    storage: createStorage({ kind: 'local', root: join(dir, 'files') }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('LocalFileStorage specifics', () => {
  it('writes files 0600 in directories 0700, leaves no temp files and prunes emptied directories', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aiva-storage-local-'));
    try {
      const root = join(dir, 'files');
      const storage = new LocalFileStorage({ root });
      await storage.put('owners/o1/h1/original', Buffer.from('hello'), { contentType: 'text/plain' });
      const source = join(dir, 'source');
      await writeFile(source, 'processed', { mode: 0o644 });
      await storage.putFile('owners/o1/h1/thumbnail.webp', source, { contentType: 'image/webp' });

      expect((await stat(join(root, 'owners/o1/h1/original'))).mode & 0o777).toBe(0o600);
      expect((await stat(join(root, 'owners/o1/h1/thumbnail.webp'))).mode & 0o777).toBe(0o600);
      expect((await stat(join(root, 'owners/o1/h1'))).mode & 0o777).toBe(0o700);
      expect((await stat(join(root, 'owners'))).mode & 0o777).toBe(0o700);
      const names = await readdir(join(root, 'owners/o1/h1'));
      expect(names.sort()).toEqual(['original', 'original~meta', 'thumbnail.webp', 'thumbnail.webp~meta']);

      await storage.delete('owners/o1/h1/original');
      await storage.delete('owners/o1/h1/thumbnail.webp');
      expect(await readdir(root)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports an unusable root on ping', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aiva-storage-local-'));
    try {
      await writeFile(join(dir, 'file'), 'not a directory');
      const storage = new LocalFileStorage({ root: join(dir, 'file', 'files') });
      await expect(storage.ping()).rejects.toThrow(/not a writable directory/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
