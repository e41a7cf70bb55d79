import { describeMongo } from '@aiva/shared/testing';
import mongoose from 'mongoose';
import { afterAll, describe, expect, it } from 'vitest';
import { connectMongoMediaStore, mediaCollection, registerMediaModels } from '../src/store/mongo.js';
import {
  at,
  imageVariants,
  makeMedia,
  mediaStoreContract,
  personId,
  sha256Of,
} from './media.store.contract.js';

// The one infrastructure gate of these tests: there is no MongoDB server unless MONGODB_URL points at one.
describeMongo('MongoDB media store', { dbPrefix: 'aiva_media_test' }, (mongo) => {
  mediaStoreContract('mongo', async () => {
    const dbName = mongo.freshDbName();
    const store = await connectMongoMediaStore({ url: mongo.url, dbName });
    return {
      store,
      // A second connection to the same database: another instance of the subgraph.
      openPeer: () => connectMongoMediaStore({ url: mongo.url, dbName }),
      // The database is dropped when the suite is done.
      cleanup: () => store.close(),
    };
  });
});

describe('MongoDB media store without a server', () => {
  it('rejects when no server answers', async () => {
    await expect(
      connectMongoMediaStore({
        url: 'mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200&connectTimeoutMS=200',
      }),
    ).rejects.toThrow();
  });
});

// Server-free checks of the documents the store writes: mongoose validates and serialises them without a server.
describe('MongoDB media store documents', () => {
  const connection = mongoose.createConnection(); // never connected
  const models = registerMediaModels(connection);
  const media = mediaCollection(models);

  afterAll(async () => {
    await connection.close();
  });

  it('stores records as given: empty names, nulls, dates and variants', () => {
    const ownerId = personId();
    const sha256 = sha256Of('bytes');
    const awaiting = makeMedia(ownerId, { filename: '' });
    const ready = makeMedia(ownerId, {
      status: 'READY',
      sha256,
      sourceKey: `owners/${ownerId}/${sha256}/source`,
      width: 1600,
      height: 1200,
      durationSeconds: 1.5,
      pageCount: 2,
      variants: imageVariants(makeMedia(ownerId, { sha256 })),
      textKey: 'k/text.txt',
      textLength: 10,
      progress: 1,
      attempts: 3,
      nextAttemptAt: at(1000),
      leaseUntil: at(2000),
      leaseToken: 'token',
    });
    for (const record of [awaiting, ready]) {
      const doc = new models.Media(media.toDoc(record));
      expect(doc.validateSync()).toBeUndefined();
      const stored = doc.toBSON(); // what the driver is given
      const { id, ...fields } = record;
      expect(stored).toEqual({ _id: id, ...fields });
      expect(media.fromDoc(stored)).toEqual(record);
    }
  });

  it('declares the indexes of the SQLite store', () => {
    const names = models.Media.schema.indexes().map(([, options]) => options.name);
    expect(names.sort()).toEqual(
      [
        'media_awaiting',
        'media_due',
        'media_owner',
        'media_owner_kind',
        'media_owner_sha',
        'media_source',
      ].sort(),
    );
  });
});
