import mongoose from 'mongoose';
import { describe, expect, it } from 'vitest';
import { AivaError } from '../src/errors.js';
import {
  type DuplicateKeyMapping,
  isTransactionsUnsupported,
  mapDuplicateKey,
} from '../src/store/mongo-kit.js';

// Server-free checks of the shared duplicate-key mapping, against the driver's real error class.
describe('mongo kit: mapDuplicateKey', () => {
  const { MongoServerError } = mongoose.mongo;
  const mapping: DuplicateKeyMapping = {
    collection: 'things',
    fields: [
      { key: 'nameLower', index: 'things_name_unique', message: 'Name taken', field: 'name' },
      { key: '_id', index: 'index: _id_', requireCollection: true, message: 'Id taken', field: 'id' },
    ],
  };
  const dup = (message: string, keyPattern?: Record<string, number>) =>
    new MongoServerError({ message, code: 11000, ...(keyPattern ? { keyPattern } : {}) });

  it('maps by key pattern, then by index name when there is none', () => {
    const byKey = mapDuplicateKey(
      dup('E11000 duplicate key error collection: db.things index: x', { nameLower: 1 }),
      mapping,
    );
    expect(byKey).toBeInstanceOf(AivaError);
    expect(byKey).toMatchObject({ message: 'Name taken', extensions: { code: 'CONFLICT', field: 'name' } });
    const byIndex = dup(
      'E11000 duplicate key error collection: db.things index: things_name_unique dup key: { }',
    );
    expect(mapDuplicateKey(byIndex, mapping)).toMatchObject({ extensions: { field: 'name' } });
    const id = dup('E11000 duplicate key error collection: db.things index: _id_', { _id: 1 });
    expect(mapDuplicateKey(id, mapping)).toMatchObject({ extensions: { field: 'id' } });
  });

  it('leaves duplicates in other collections, and ambiguous ones, alone', () => {
    const outbox = dup('E11000 duplicate key error collection: db.outbox index: _id_', { _id: 1 });
    expect(mapDuplicateKey(outbox, mapping)).toBe(outbox);
    // `_id` requires the collection to be named; `nameLower` does not.
    const unnamedId = dup('E11000 duplicate key error', { _id: 1 });
    expect(mapDuplicateKey(unnamedId, mapping)).toBe(unnamedId);
    expect(mapDuplicateKey(dup('E11000 duplicate key error', { nameLower: 1 }), mapping)).toMatchObject({
      extensions: { field: 'name' },
    });
    const other = new MongoServerError({ message: 'boom', code: 2 });
    expect(mapDuplicateKey(other, mapping)).toBe(other);
    expect(mapDuplicateKey(null, mapping)).toBeNull();
  });
});

describe('mongo kit: isTransactionsUnsupported', () => {
  const { MongoServerError } = mongoose.mongo;

  it('recognises the standalone server refusing transactions', () => {
    const standalone = new MongoServerError({
      message: 'Transaction numbers are only allowed on a replica set member or mongos',
      code: 20,
      codeName: 'IllegalOperation',
    });
    expect(isTransactionsUnsupported(standalone)).toBe(true);
    expect(
      isTransactionsUnsupported(new MongoServerError({ message: 'E11000 duplicate key', code: 11000 })),
    ).toBe(false);
    expect(isTransactionsUnsupported(new Error('network'))).toBe(false);
  });
});
