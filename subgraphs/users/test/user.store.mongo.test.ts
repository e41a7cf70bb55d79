import { AivaError } from '@aiva/shared';
import { describeMongo } from '@aiva/shared/testing';
import mongoose from 'mongoose';
import { describe, expect, it } from 'vitest';
import { connectMongoUserStore, mapDuplicateKey } from '../src/store/mongo.js';
import { userStoreContract } from './user.store.contract.js';

// The one infrastructure gate of the users tests: there is no MongoDB server unless MONGODB_URL points at one.
describeMongo('MongoDB user store', { dbPrefix: 'aiva_users_test' }, (mongo) => {
  userStoreContract('mongo', async () =>
    connectMongoUserStore({ url: mongo.url, dbName: mongo.freshDbName() }),
  );
});

// Server-free checks of the adapter's error handling, against the driver's real error class.
describe('MongoDB user store error mapping', () => {
  const { MongoServerError } = mongoose.mongo;
  const dup = (collection: string, index: string, key: Record<string, unknown>) =>
    new MongoServerError({
      message: `E11000 duplicate key error collection: aiva.${collection} index: ${index} dup key: ${JSON.stringify(key)}`,
      code: 11000,
      keyPattern: Object.fromEntries(Object.keys(key).map((k) => [k, 1])),
      keyValue: key,
    });

  it('maps unique violations on users to CONFLICT with the field', () => {
    const email = mapDuplicateKey(dup('users', 'users_email_lower_unique', { emailLower: 'a@b.c' }));
    expect(email).toBeInstanceOf(AivaError);
    expect(email).toMatchObject({ extensions: { code: 'CONFLICT', field: 'email' } });
    const username = mapDuplicateKey(dup('users', 'users_username_lower_unique', { usernameLower: 'ada' }));
    expect(username).toMatchObject({ extensions: { code: 'CONFLICT', field: 'username' } });
    expect(mapDuplicateKey(dup('users', '_id_', { _id: 'x' }))).toMatchObject({
      extensions: { field: 'id' },
    });
  });

  it('falls back to the index name when the error has no keyPattern', () => {
    const error = new MongoServerError({
      message:
        'E11000 duplicate key error collection: aiva.users index: users_email_lower_unique dup key: { }',
      code: 11000,
    });
    expect(mapDuplicateKey(error)).toMatchObject({ extensions: { field: 'email' } });
  });

  it('leaves other errors alone, including a duplicate outbox event id', () => {
    const outbox = dup('outbox', '_id_', { _id: 'event' });
    expect(mapDuplicateKey(outbox)).toBe(outbox);
    const other = new MongoServerError({ message: 'boom', code: 2 });
    expect(mapDuplicateKey(other)).toBe(other);
    expect(mapDuplicateKey('text')).toBe('text');
  });

  it('rejects when no server answers', async () => {
    await expect(
      connectMongoUserStore({
        url: 'mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200&connectTimeoutMS=200',
      }),
    ).rejects.toThrow();
  });
});
