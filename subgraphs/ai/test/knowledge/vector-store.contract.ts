import { randomBytes } from 'node:crypto';
import { uuidv7 } from '@aiva/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  ChunkPayload,
  VectorCollection,
  VectorPoint,
  VectorStore,
} from '../../src/knowledge/vector-store.js';

/** A store under test, as the contract's `open` returns it. */
export interface OpenedVectorStore {
  /** A store to test on; collections are made per test with fresh model names, so it may be shared. */
  store: VectorStore;
  /** Closes the store and removes what it stored. */
  cleanup(): Promise<void>;
}

/** Vector length of the suite's collections: small, the behaviour does not depend on it. */
export const DIM = 8;

/**
 * The unit vector at `angle` radians in the plane of the first two axes: its cosine similarity to
 * `direction(0)` is `cos(angle)`, so scores are known in advance.
 */
export function direction(angle: number, dimensions = DIM): Float32Array {
  const vector = new Float32Array(dimensions);
  vector[0] = Math.cos(angle);
  vector[1] = Math.sin(angle);
  return vector;
}

/** A model name no other test (or run, on a shared server) uses. */
export const freshModel = () => `test-model-${randomBytes(4).toString('hex')}`;

/** A point of `ownerId` at `angle`, with its payload. */
export function point(
  ownerId: string,
  angle: number,
  payload: Partial<ChunkPayload> = {},
  dimensions = DIM,
): VectorPoint {
  return {
    id: uuidv7(),
    vector: direction(angle, dimensions),
    payload: {
      ownerId,
      sourceType: 'note',
      sourceId: 'source-1',
      title: 'A note',
      chunkIndex: 0,
      text: `chunk at ${angle}`,
      ...payload,
    },
  };
}

/** The behaviour every {@link VectorStore} shares. */
export function vectorStoreContract(name: string, open: () => Promise<OpenedVectorStore>): void {
  describe(`vector store contract: ${name}`, () => {
    let opened: OpenedVectorStore;
    let store: VectorStore;
    let collection: VectorCollection;
    const alice = () => `alice-${uuidv7()}`;

    beforeEach(async () => {
      opened = await open();
      store = opened.store;
      collection = await store.collection(freshModel(), DIM);
    });
    afterEach(async () => {
      await opened.cleanup();
    });

    it('answers ping and names its kind', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
      expect(['sqlite-vec', 'qdrant']).toContain(store.kind);
      expect(collection.dimensions).toBe(DIM);
    });

    it('returns the nearest points first, scored by cosine similarity, with their payloads', async () => {
      const owner = alice();
      const points = [1.0, 0.1, 2.0, 0.5].map((angle, i) =>
        point(owner, angle, { chunkIndex: i, title: `Título ${i} 📝`, text: `第${i}段 text` }),
      );
      await collection.upsert(points);

      const hits = await collection.search(direction(0), { ownerId: owner, limit: 10 });
      expect(hits.map((hit) => hit.id)).toEqual([points[1]!.id, points[3]!.id, points[0]!.id, points[2]!.id]);
      const expected = [0.1, 0.5, 1.0, 2.0].map(Math.cos);
      hits.forEach((hit, i) => {
        expect(hit.score).toBeCloseTo(expected[i]!, 5);
      });
      expect(hits[0]!.payload).toEqual(points[1]!.payload);
      expect(hits[3]!.score).toBeLessThan(0); // cosine, not a distance: opposite-ish vectors score below 0
    });

    it("never returns another owner's points, even when they are closer", async () => {
      const owner = alice();
      const other = alice();
      // Twenty of another owner's points nearer the query than the owner's only one: a filter applied after a
      // top-k search would find none of the owner's.
      await collection.upsert(Array.from({ length: 20 }, (_, i) => point(other, i * 0.001)));
      const mine = point(owner, 1.2);
      await collection.upsert([mine]);

      const hits = await collection.search(direction(0), { ownerId: owner, limit: 1 });
      expect(hits.map((hit) => hit.id)).toEqual([mine.id]);
      expect(hits[0]!.payload.ownerId).toBe(owner);
      expect(await collection.search(direction(0), { ownerId: alice(), limit: 5 })).toEqual([]);
    });

    it('returns at most limit hits, the closest ones', async () => {
      const owner = alice();
      const points = Array.from({ length: 10 }, (_, i) => point(owner, (i + 1) * 0.1));
      await collection.upsert(points);
      const hits = await collection.search(direction(0), { ownerId: owner, limit: 3 });
      expect(hits.map((hit) => hit.id)).toEqual(points.slice(0, 3).map((p) => p.id));
    });

    it('leaves out hits scoring below minScore', async () => {
      const owner = alice();
      const near = point(owner, 0.2); // cos 0.98
      const middle = point(owner, 0.8); // cos 0.70
      const far = point(owner, 1.4); // cos 0.17
      await collection.upsert([near, middle, far]);
      const hits = await collection.search(direction(0), { ownerId: owner, limit: 10, minScore: 0.5 });
      expect(hits.map((hit) => hit.id)).toEqual([near.id, middle.id]);
      expect(await collection.search(direction(0), { ownerId: owner, limit: 10, minScore: 0.99 })).toEqual(
        [],
      );
    });

    it('replaces a point upserted again under the same id, owner included', async () => {
      const owner = alice();
      const other = alice();
      const first = point(owner, 1.0, { title: 'old', text: 'old text' });
      await collection.upsert([first, point(owner, 0.5)]);

      const replaced: VectorPoint = {
        ...first,
        vector: direction(0.05),
        payload: { ...first.payload, title: 'new' },
      };
      await collection.upsert([replaced]);
      expect(await collection.count(owner)).toBe(2);
      const [top] = await collection.search(direction(0), { ownerId: owner, limit: 1 });
      expect(top).toMatchObject({ id: first.id, payload: { title: 'new', text: 'old text' } });
      expect(top!.score).toBeCloseTo(Math.cos(0.05), 5);

      await collection.upsert([{ ...replaced, payload: { ...replaced.payload, ownerId: other } }]);
      expect(await collection.count(owner)).toBe(1);
      expect(await collection.count(other)).toBe(1);
      const hits = await collection.search(direction(0), { ownerId: owner, limit: 10 });
      expect(hits.map((hit) => hit.id)).not.toContain(first.id);
    });

    it("deletes one source's chunks, and only them", async () => {
      const owner = alice();
      const other = alice();
      await collection.upsert([
        point(owner, 0.1, { sourceId: 'doc', chunkIndex: 0 }),
        point(owner, 0.2, { sourceId: 'doc', chunkIndex: 1 }),
        point(owner, 0.3, { sourceId: 'doc', sourceType: 'media' }), // same id, other type
        point(owner, 0.4, { sourceId: 'another' }),
        point(other, 0.1, { sourceId: 'doc' }), // same source id, other owner
      ]);
      expect(await collection.deleteBySource(owner, 'note', 'doc')).toBe(2);
      expect(await collection.deleteBySource(owner, 'note', 'doc')).toBe(0);
      expect(await collection.count(owner)).toBe(2);
      expect(await collection.count(other)).toBe(1);
      const hits = await collection.search(direction(0), { ownerId: owner, limit: 10 });
      expect(hits.map((hit) => [hit.payload.sourceType, hit.payload.sourceId])).toEqual([
        ['media', 'doc'],
        ['note', 'another'],
      ]);
    });

    it("deletes an owner's chunks, and only them", async () => {
      const owner = alice();
      const other = alice();
      await collection.upsert([
        point(owner, 0.1),
        point(owner, 0.2, { sourceType: 'media' }),
        point(other, 0.3),
      ]);
      expect(await collection.count()).toBe(3);
      expect(await collection.deleteByOwner(owner)).toBe(2);
      expect(await collection.deleteByOwner(owner)).toBe(0);
      expect(await collection.count(owner)).toBe(0);
      expect(await collection.count()).toBe(1);
      expect(await collection.search(direction(0), { ownerId: owner, limit: 10 })).toEqual([]);
      expect(await collection.search(direction(0), { ownerId: other, limit: 10 })).toHaveLength(1);
    });

    it('keeps the vectors of two models (or two sizes of one model) apart', async () => {
      const owner = alice();
      const modelA = freshModel();
      const a = await store.collection(modelA, DIM);
      const b = await store.collection(freshModel(), DIM);
      const aWide = await store.collection(modelA, DIM * 2);
      await a.upsert([point(owner, 0.1)]);
      await aWide.upsert([point(owner, 0.1, {}, DIM * 2), point(owner, 0.2, {}, DIM * 2)]);

      expect(await a.count(owner)).toBe(1);
      expect(await aWide.count(owner)).toBe(2);
      expect(await b.count()).toBe(0);
      expect(await b.search(direction(0), { ownerId: owner, limit: 10 })).toEqual([]);
      // The same model and size again is the same collection.
      expect(await (await store.collection(modelA, DIM)).count(owner)).toBe(1);
    });

    it('rejects vectors of the wrong size, writing nothing', async () => {
      const owner = alice();
      const good = point(owner, 0.1);
      const wrong = point(owner, 0.2, {}, DIM + 1);
      await expect(collection.upsert([good, wrong])).rejects.toThrow(
        new RegExp(`${DIM + 1} dimensions but collection .* has ${DIM}`),
      );
      expect(await collection.count()).toBe(0);
      await expect(collection.search(direction(0, DIM - 1), { ownerId: owner, limit: 1 })).rejects.toThrow(
        /dimensions/,
      );
    });

    it('rejects ids that are not UUIDs, bad limits and non-finite values', async () => {
      const owner = alice();
      await expect(collection.upsert([{ ...point(owner, 0), id: 'chunk-1' }])).rejects.toThrow(/not a UUID/);
      const nan = point(owner, 0);
      nan.vector[3] = Number.NaN;
      await expect(collection.upsert([nan])).rejects.toThrow(/non-finite/);
      await expect(collection.search(direction(0), { ownerId: owner, limit: 0 })).rejects.toThrow(/limit/);
      await expect(store.collection('m', 0)).rejects.toThrow(/dimensions/);
      expect(await collection.count()).toBe(0);
    });

    it('counts points with a zero vector but never finds them; a zero query finds nothing', async () => {
      const owner = alice();
      const empty: VectorPoint = { ...point(owner, 0), vector: new Float32Array(DIM) };
      const real = point(owner, 0.3);
      await collection.upsert([empty, real]);
      expect(await collection.count(owner)).toBe(2);
      const hits = await collection.search(direction(0), { ownerId: owner, limit: 10 });
      expect(hits.map((hit) => hit.id)).toEqual([real.id]);
      expect(await collection.search(new Float32Array(DIM), { ownerId: owner, limit: 10 })).toEqual([]);
      expect(await collection.deleteByOwner(owner)).toBe(2);
    });
  });
}
