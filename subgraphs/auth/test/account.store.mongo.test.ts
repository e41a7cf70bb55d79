import { AivaError } from '@aiva/shared';
import { describeMongo } from '@aiva/shared/testing';
import mongoose from 'mongoose';
import { describe, expect, it } from 'vitest';
import { connectMongoAccountStore, mapDuplicateKey } from '../src/store/account-mongo.js';
import {
  accountStoreContract,
  makeAccount,
  makeToken,
  registeredEvent,
  tokenEvent,
} from './account.store.contract.js';

// There is no MongoDB server unless MONGODB_URL points at one.
describeMongo('MongoDB account store', { dbPrefix: 'aiva_auth_test' }, (mongo) => {
  accountStoreContract('mongo', async () =>
    connectMongoAccountStore({ url: mongo.url, dbName: mongo.freshDbName() }),
  );

  it('deletes outbox documents once published, keeping none of their data', async () => {
    const dbName = mongo.freshDbName();
    const store = await connectMongoAccountStore({ url: mongo.url, dbName });
    const connection = await mongoose.createConnection(mongo.url, { dbName }).asPromise();
    try {
      const account = makeAccount();
      const { token, secret } = makeToken(account.id);
      const registered = registeredEvent(account);
      const requested = tokenEvent(account, token, secret);
      await store.insert(account, [registered]);
      await store.insertToken(token, [requested]);
      expect(await connection.collection('outbox').countDocuments()).toBe(2);
      await store.markPublished([registered.id, requested.id]);
      expect(await connection.collection('outbox').countDocuments()).toBe(0);
    } finally {
      await connection.close();
      await store.close();
    }
  });
});

// Server-free checks of the adapter's error handling, against the driver's real error class.
describe('MongoDB account store error mapping', () => {
  const { MongoServerError } = mongoose.mongo;
  const dup = (collection: string, index: string, key: Record<string, unknown>) =>
    new MongoServerError({
      message: `E11000 duplicate key error collection: aiva.${collection} index: ${index} dup key: ${JSON.stringify(key)}`,
      code: 11000,
      keyPattern: Object.fromEntries(Object.keys(key).map((k) => [k, 1])),
      keyValue: key,
    });

  it('maps unique violations on accounts to CONFLICT with the field', () => {
    const email = mapDuplicateKey(dup('accounts', 'accounts_email_unique', { email: 'a@b.c' }));
    expect(email).toBeInstanceOf(AivaError);
    expect(email).toMatchObject({ extensions: { code: 'CONFLICT', field: 'email' } });
    expect(mapDuplicateKey(dup('accounts', '_id_', { _id: 'x' }))).toMatchObject({
      extensions: { code: 'CONFLICT', field: 'id' },
    });
  });

  it('falls back to the index name when the error has no keyPattern', () => {
    const error = new MongoServerError({
      message:
        'E11000 duplicate key error collection: aiva.accounts index: accounts_email_unique dup key: { }',
      code: 11000,
    });
    expect(mapDuplicateKey(error)).toMatchObject({ extensions: { field: 'email' } });
  });

  it('leaves other errors alone, including duplicate token hashes and event ids', () => {
    const outbox = dup('outbox', '_id_', { _id: 'event' });
    expect(mapDuplicateKey(outbox)).toBe(outbox);
    const token = dup('one_time_tokens', '_id_', { _id: 'hash' });
    expect(mapDuplicateKey(token)).toBe(token);
    const other = new MongoServerError({ message: 'boom', code: 2 });
    expect(mapDuplicateKey(other)).toBe(other);
    expect(mapDuplicateKey('text')).toBe('text');
  });

  it('rejects when no server answers', async () => {
    await expect(
      connectMongoAccountStore({
        url: 'mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200&connectTimeoutMS=200',
      }),
    ).rejects.toThrow();
  });
});
