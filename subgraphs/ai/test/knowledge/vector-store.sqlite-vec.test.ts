import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { openSqliteDatabase } from '@aiva/shared';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteVecStore } from '../../src/knowledge/sqlite-vec.js';
import { collectionSlug } from '../../src/knowledge/vector-store.js';
import { DIM, direction, freshModel, point, vectorStoreContract } from './vector-store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'aiva-ai-vectors-'));
let n = 0;
/** A fresh database file (in a not-yet-existing subdirectory, which the store must create). */
const freshFile = () => join(dir, `db-${++n}`, 'vectors.sqlite');

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

vectorStoreContract('sqlite-vec (file)', async () => {
  const file = freshFile();
  const store = openSqliteVecStore({ file });
  return {
    store,
    async cleanup() {
      await store.close();
      rmSync(dirname(file), { recursive: true, force: true });
    },
  };
});

describe('sqlite-vec vector store', () => {
  it('keeps collections and points across close and reopen', async () => {
    const file = freshFile();
    const model = freshModel();
    const kept = point('owner-1', 0.2);
    const store = openSqliteVecStore({ file });
    await (await store.collection(model, DIM)).upsert([kept, point('owner-2', 0.1)]);
    await store.close();
    await store.close(); // harmless

    const reopened = openSqliteVecStore({ file });
    try {
      const collection = await reopened.collection(model, DIM);
      expect(await collection.count()).toBe(2);
      const hits = await collection.search(direction(0), { ownerId: 'owner-1', limit: 5 });
      expect(hits.map((hit) => hit.id)).toEqual([kept.id]);
      expect(hits[0]!.payload).toEqual(kept.payload);
    } finally {
      await reopened.close();
    }
  });

  it('partitions the vector index by owner and records each collection', async () => {
    const file = freshFile();
    const model = freshModel();
    const store = openSqliteVecStore({ file });
    await store.collection(model, DIM);
    await store.close();

    const db = openSqliteDatabase(file, { readonly: true });
    try {
      const slug = collectionSlug(model, DIM);
      const ddl = db
        .prepare<[string], string>('SELECT sql FROM sqlite_master WHERE name = ?')
        .pluck()
        .get(`vec_${slug}`);
      expect(ddl).toMatch(/owner_id TEXT PARTITION KEY/);
      expect(ddl).toMatch(new RegExp(`float\\[${DIM}\\] distance_metric=cosine`));
      expect(db.prepare('SELECT model, dimensions FROM vector_collections WHERE slug = ?').get(slug)).toEqual(
        {
          model,
          dimensions: DIM,
        },
      );
    } finally {
      db.close();
    }
  });

  it('fails ping once closed', async () => {
    const store = openSqliteVecStore({ file: ':memory:' });
    await store.ping();
    await store.close();
    await expect(store.ping()).rejects.toThrow();
  });
});
