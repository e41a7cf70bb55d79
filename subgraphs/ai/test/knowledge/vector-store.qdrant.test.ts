import { randomBytes } from 'node:crypto';
import { describeInfra } from '@aiva/shared/testing';
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, describe, expect, it } from 'vitest';
import { createQdrantStore } from '../../src/knowledge/qdrant.js';
import { collectionSlug } from '../../src/knowledge/vector-store.js';
import { DIM, freshModel, vectorStoreContract } from './vector-store.contract.js';

/** Every run names its collections under its own prefix; they are deleted when the file is done. */
const prefix = `aiva_test_${Date.now().toString(36)}${randomBytes(3).toString('hex')}_`;

// The one infrastructure gate of these tests: there is no Qdrant server unless QDRANT_URL points at one.
await describeInfra('Qdrant vector store', { envVar: 'QDRANT_URL', defaultUrl: undefined }, (url) => {
  const apiKey = process.env.QDRANT_API_KEY || undefined;
  const open = () => createQdrantStore({ url, apiKey, collectionPrefix: prefix });

  afterAll(async () => {
    const client = new QdrantClient({ url, apiKey, checkCompatibility: false });
    const { collections } = await client.getCollections();
    for (const { name } of collections) {
      if (name.startsWith(prefix)) await client.deleteCollection(name);
    }
  });

  vectorStoreContract('qdrant', async () => {
    const store = open();
    return { store, cleanup: () => store.close() };
  });

  describe('Qdrant specifics', () => {
    it('creates a cosine collection with the owner as an indexed tenant key', async () => {
      const model = freshModel();
      const store = open();
      await store.collection(model, DIM);
      const client = new QdrantClient({ url, apiKey, checkCompatibility: false });
      const info = await client.getCollection(`${prefix}${collectionSlug(model, DIM)}`);
      expect(info.config.params.vectors).toMatchObject({ size: DIM, distance: 'Cosine' });
      expect(Object.keys(info.payload_schema)).toEqual(
        expect.arrayContaining(['ownerId', 'sourceType', 'sourceId']),
      );
      await store.close();
    });
  });
});

describe('Qdrant vector store without a server', () => {
  it('fails ping with a message that names Qdrant and not the API key', async () => {
    const store = createQdrantStore({
      url: 'http://127.0.0.1:9',
      apiKey: 'SECRET-KEY-NOT-SHOWN',
      timeoutMs: 2_000,
    });
    const error = await store.ping().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error?.message).toMatch(/^Qdrant ping failed/);
    expect(error?.message).not.toMatch(/SECRET-KEY-NOT-SHOWN/);
    await store.close();
  });
});
