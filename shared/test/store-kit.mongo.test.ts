import { type Model, Schema } from 'mongoose';
import { describe, expect, it } from 'vitest';
import { AivaError } from '../src/errors.js';
import { uuidv7 } from '../src/events/uuidv7.js';
import {
  connectMongoEventStore,
  type MongoDocOf,
  mapDuplicateKey,
  mongoCollection,
  mongoDocs,
} from '../src/store/mongo-kit.js';
import type { RecordFields } from '../src/store/record-fields.js';
import { userCreated } from '../src/testing/index.js';
import { describeMongo } from '../src/testing/mongo.js';

/** A record with every field kind, shaped like a push subscription (`id` → `_id`, unique by endpoint). */
interface PushSub {
  id: string;
  userId: string;
  endpoint: string;
  failures: number;
  userAgent: string | null;
  active: boolean;
  createdAt: Date;
  lastSentAt: Date | null;
  keys: { p256dh: string; auth: string };
  topics: string[];
  label?: string;
}

/** As stored: a lower-cased endpoint under the unique index; no label is `null`. */
type PushSubDoc = Omit<MongoDocOf<PushSub>, 'label'> & { endpointKey: string; label: string | null };

const PUSH_SUB_FIELDS: RecordFields<PushSub> = {
  id: 'string',
  userId: 'string',
  endpoint: 'string',
  failures: 'number',
  userAgent: 'value',
  active: 'boolean',
  createdAt: 'date',
  lastSentAt: 'date?',
  keys: 'json',
  topics: 'list',
  label: 'optional',
};

let endpoints = 0;
function sub(userId: string, overrides: Partial<PushSub> = {}): PushSub {
  endpoints++;
  return {
    id: uuidv7(),
    userId,
    endpoint: `https://push.example/Ep${endpoints}`,
    failures: 1,
    userAgent: null,
    active: true,
    createdAt: new Date('2026-03-04T05:06:07.089Z'),
    lastSentAt: null,
    keys: { p256dh: 'pk', auth: 'ak' },
    topics: ['news'],
    ...overrides,
  };
}

const derived = (s: PushSub): Partial<PushSubDoc> => ({ endpointKey: s.endpoint.toLowerCase() });

describe('store kit: mongoDocs (server-free)', () => {
  const codec = mongoDocs<PushSub, PushSubDoc>({ fields: PUSH_SUB_FIELDS, derived });

  it('stores the key as _id, adds derived fields, and maps every kind there and back', () => {
    const record = sub('u1', {
      label: 'laptop',
      userAgent: 'Firefox',
      lastSentAt: new Date('2026-04-01T00:00:00Z'),
    });
    const doc = codec.toDoc(record);
    expect(doc).toEqual({
      _id: record.id,
      userId: 'u1',
      endpoint: record.endpoint,
      endpointKey: record.endpoint.toLowerCase(),
      failures: 1,
      userAgent: 'Firefox',
      active: true,
      createdAt: record.createdAt,
      lastSentAt: record.lastSentAt,
      keys: { p256dh: 'pk', auth: 'ak' },
      topics: ['news'],
      label: 'laptop',
    });
    expect(doc.keys).not.toBe(record.keys); // a copy
    expect(doc.topics).not.toBe(record.topics);
    expect(codec.fromDoc(doc)).toEqual(record);
  });

  it('stores absent values as null, and reads missing fields of older documents as their defaults', () => {
    const record = sub('u1');
    expect(codec.toDoc(record)).toMatchObject({ label: null, lastSentAt: null, userAgent: null });
    expect(codec.fromDoc(codec.toDoc(record))).toEqual(record);
    const old = { _id: 'x', createdAt: new Date(0) } as unknown as PushSubDoc;
    expect(codec.fromDoc(old)).toEqual({
      id: 'x',
      userId: '',
      endpoint: '',
      failures: 0,
      userAgent: null,
      active: false,
      createdAt: new Date(0),
      lastSentAt: null,
      keys: null,
      topics: [],
    });
  });

  it('uses another field as _id when told', () => {
    const byUser = mongoDocs<{ userId: string; attempts: number }, { _id: string; attempts: number }>({
      fields: { userId: 'string', attempts: 'number' },
      key: 'userId',
    });
    expect(byUser.toDoc({ userId: 'u1', attempts: 3 })).toEqual({ _id: 'u1', attempts: 3 });
    expect(byUser.fromDoc({ _id: 'u1', attempts: 3 })).toEqual({ userId: 'u1', attempts: 3 });
  });
});

/** A stand-in model that records the query a page runs and answers with `docs`. */
function recordingModel(docs: PushSubDoc[]) {
  const seen: { filter?: unknown; sort?: unknown; limit?: number } = {};
  const query = {
    sort(sort: unknown) {
      seen.sort = sort;
      return query;
    },
    limit(limit: number) {
      seen.limit = limit;
      return query;
    },
    lean: () => query,
    exec: async () => docs.slice(0, seen.limit),
  };
  const model = {
    find(filter: unknown) {
      seen.filter = filter;
      return query;
    },
  } as unknown as Model<PushSubDoc>;
  return { model, seen };
}

describe('store kit: mongoCollection.page (server-free)', () => {
  const codec = mongoDocs<PushSub, PushSubDoc>({ fields: PUSH_SUB_FIELDS, derived });
  const docs = [sub('u1'), sub('u1'), sub('u1')].map(codec.toDoc);

  it('asks for one more than the page, sorted by _id, after the key in the page order', async () => {
    const asc = recordingModel(docs);
    const page = await mongoCollection(asc.model, { fields: PUSH_SUB_FIELDS, derived }).page({ first: 2 });
    expect(asc.seen).toEqual({ filter: {}, sort: { _id: 1 }, limit: 3 });
    expect(page.items.map((n) => n.id)).toEqual([docs[0]?._id, docs[1]?._id]);
    expect(page.hasNextPage).toBe(true);

    const desc = recordingModel(docs.slice(0, 1));
    const newest = await mongoCollection(desc.model, { fields: PUSH_SUB_FIELDS }).page({
      first: 5,
      afterId: 'k',
      order: 'desc',
      filter: { userId: 'u1', active: true },
    });
    expect(desc.seen).toEqual({
      filter: { userId: 'u1', active: true, _id: { $lt: 'k' } },
      sort: { _id: -1 },
      limit: 6,
    });
    expect(newest.hasNextPage).toBe(false);
  });

  it('keeps a filter on _id apart from the key condition', async () => {
    const { model, seen } = recordingModel([]);
    await mongoCollection(model, { fields: PUSH_SUB_FIELDS }).page({
      first: 1,
      afterId: 'k',
      filter: { _id: { $ne: 'z' } },
    });
    expect(seen.filter).toEqual({ $and: [{ _id: { $ne: 'z' } }, { _id: { $gt: 'k' } }] });
  });
});

// Against a real server when MONGODB_URL is set: the store base end to end.
describeMongo('MongoDB store kit', { dbPrefix: 'aiva_shared_store_kit_test' }, (mongo) => {
  const subSchema = new Schema<PushSubDoc>(
    {
      _id: { type: String, required: true },
      userId: { type: String, required: true },
      endpoint: { type: String, required: true },
      endpointKey: { type: String, required: true },
      failures: { type: Number, required: true },
      userAgent: { type: String, default: null },
      active: { type: Boolean, required: true },
      createdAt: { type: Date, required: true },
      lastSentAt: { type: Date, default: null },
      keys: { type: Schema.Types.Mixed, required: true },
      topics: { type: [String], default: [] },
      label: { type: String, default: null },
    },
    { collection: 'push_subscriptions', versionKey: false, id: false, autoIndex: false, minimize: false },
  );
  subSchema.index({ endpointKey: 1 }, { unique: true, name: 'push_subscriptions_endpoint_unique' });
  subSchema.index({ userId: 1, _id: 1 }, { name: 'push_subscriptions_user' });
  const mapError = (error: unknown) =>
    mapDuplicateKey(error, {
      collection: 'push_subscriptions',
      fields: [
        {
          key: 'endpointKey',
          index: 'push_subscriptions_endpoint_unique',
          message: 'Endpoint taken',
          field: 'endpoint',
        },
      ],
    });

  const open = () =>
    connectMongoEventStore({
      url: mongo.url,
      dbName: mongo.freshDbName(),
      models: (connection) => ({ PushSub: connection.model<PushSubDoc>('PushSub', subSchema) }),
      mapError,
    });

  it('writes records with their events, pages newest first with a filter, maps duplicates, runs once', async () => {
    const store = await open();
    try {
      const subs = mongoCollection(store.models.PushSub, { fields: PUSH_SUB_FIELDS, derived });
      const mine = Array.from({ length: 5 }, (_, i) => sub('u1', { label: `s${i}`, active: i % 2 === 0 }));
      for (const s of mine) {
        await store.write(async (session) => {
          await subs.insert(s, session);
          await store.outbox.write([userCreated()], session);
        });
      }
      await subs.insert(sub('u2'));
      expect(await store.relay.outboxStats()).toEqual({ pending: 5, quarantined: 0 });
      expect(await subs.findById(mine[0]?.id ?? '')).toEqual(mine[0]);
      expect((await subs.findByIds(mine.map((s) => s.id))).length).toBe(5);
      expect(await subs.count({ userId: 'u1', active: true })).toBe(3);

      const activeNewestFirst = await subs.page({
        first: 2,
        order: 'desc',
        filter: { userId: 'u1', active: true },
      });
      expect(activeNewestFirst.items.map((s) => s.label)).toEqual(['s4', 's2']);
      expect(activeNewestFirst.hasNextPage).toBe(true);
      const rest = await subs.page({
        first: 2,
        order: 'desc',
        afterId: activeNewestFirst.items.at(-1)?.id,
        filter: { userId: 'u1', active: true },
      });
      expect(rest).toMatchObject({ hasNextPage: false });
      expect(rest.items.map((s) => s.label)).toEqual(['s0']);

      // The same endpoint in another case is a duplicate: the store's CONFLICT (through `mapError`).
      const duplicate = store.write(async (session) => {
        await store.outbox.write([userCreated()], session);
        await subs.insert(sub('u1', { endpoint: mine[0]?.endpoint.toUpperCase() ?? '' }), session);
      });
      await expect(duplicate).rejects.toBeInstanceOf(AivaError);
      await expect(duplicate).rejects.toMatchObject({ extensions: { code: 'CONFLICT', field: 'endpoint' } });

      const sent = await subs.updateById(mine[0]?.id ?? '', { $set: { lastSentAt: new Date() } });
      expect(sent?.lastSentAt).toBeInstanceOf(Date);
      expect(await subs.removeById(mine[0]?.id ?? '')).toMatchObject({ id: mine[0]?.id });
      expect(await subs.removeById(mine[0]?.id ?? '')).toBeNull();

      const effect = async () => 'done' as const;
      expect(await store.once('c', 'e1', effect)).toBe('done');
      expect(await store.once('c', 'e1', effect)).toBe('duplicate');
    } finally {
      await store.close();
    }
  });

  it('closes the connection when the setup fails', async () => {
    await expect(
      connectMongoEventStore({
        url: mongo.url,
        dbName: mongo.freshDbName(),
        models: () => {
          throw new Error('bad model');
        },
        mapError,
      }),
    ).rejects.toThrow('bad model');
  });
});
