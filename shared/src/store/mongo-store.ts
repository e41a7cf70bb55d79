// The base of a MongoDB store (exported by `@aiva/shared/mongo`): connect, register the store's models next to the
// outbox and the processed event ids, set them up (`setUpMongoStore`), and the document mechanics every store
// repeats for its collections: record ↔ document mapping (`id` ↔ `_id`) from a field table, insert, lookups by
// `_id`, find-and-update / find-and-delete returning records, and keyset pagination on `_id`.
// Nothing here runs at module load (mongo-kit.ts re-exports it and it imports mongo-kit.ts).
import type { ClientSession, Connection, FilterQuery, Model, UpdateQuery } from 'mongoose';
import { type OutboxStore, outboxMethods } from '../events/outbox.js';
import type { ProcessedEventsOptions } from '../events/processed-events.js';
import {
  connectMongo,
  createMongoOutbox,
  createMongoProcessedEvents,
  type MongoConnectionOptions,
  type MongoModelLike,
  type MongoOutbox,
  type MongoProcessedEvents,
  type MongoStoreKit,
  setUpMongoStore,
} from './mongo-kit.js';
import {
  copyJson,
  type FieldConversions,
  listOf,
  type Page,
  type PageRequest,
  PLAIN_FIELD_CONVERSIONS,
  pageLimit,
  pageOf,
  type RecordFields,
  storedFields,
} from './record-fields.js';

/** A stored document: `_id` is the record's key. */
export interface MongoKeyedDoc {
  _id: string;
}

/**
 * The document type of a record stored with `mongoDocs`: the record without its key field `K`, plus `_id`. Widen
 * it where the document differs (derived fields, `optional` fields stored as `null`).
 */
export type MongoDocOf<R, K extends keyof R = 'id' & keyof R> = Omit<R, K> & MongoKeyedDoc;

/** Record ↔ document mapping of one collection: the key field is `_id`, the others keep their names. */
export interface MongoDocCodec<R, D extends MongoKeyedDoc> {
  toDoc(record: R): D;
  fromDoc(doc: D): R;
}

/** How MongoDB stores each kind (see `FieldKind`); dates and JSON values are copied on the way back. */
const MONGO_CONVERSIONS: FieldConversions = {
  ...PLAIN_FIELD_CONVERSIONS,
  boolean: { write: (value) => value, read: (value) => Boolean(value) },
  date: { write: (value) => value, read: (value) => new Date(value as Date) },
  'date?': { write: (value) => value ?? null, read: (value) => (value ? new Date(value as Date) : null) },
  json: { write: (value) => copyJson(value), read: (value) => copyJson(value ?? null) },
  list: { write: (value) => listOf(value), read: (value) => listOf(value) },
  // Absent from the record when stored as null (or empty).
  optional: { write: (value) => value ?? null, read: (value) => value || undefined },
};

export interface MongoDocsOptions<R, D extends MongoKeyedDoc> {
  /** Every field of the record (see `FieldKind`; a missing field of an older document reads as its default). */
  fields: RecordFields<R>;
  /** The field stored as `_id` (default `id`). */
  key?: keyof R & string;
  /** Fields derived from the record that only the document carries (e.g. a lower-cased copy under a unique index). */
  derived?: (record: R) => Partial<D>;
}

/**
 * The document codec of a field table: the key field becomes `_id`, `json` fields are copied, absent `optional`
 * fields are stored as `null` and read back as absent (as are empty ones).
 */
export function mongoDocs<R, D extends MongoKeyedDoc>(options: MongoDocsOptions<R, D>): MongoDocCodec<R, D> {
  const key = options.key ?? 'id';
  const fields = Object.fromEntries(Object.entries(options.fields).filter(([name]) => name !== key));
  const codec = storedFields<R>({
    fields: fields as RecordFields<R>,
    conversions: MONGO_CONVERSIONS,
    name: (field) => field,
  });
  return {
    toDoc(record) {
      const _id = (record as Record<string, unknown>)[key];
      return { _id, ...codec.write(record), ...options.derived?.(record) } as D;
    },
    fromDoc(doc) {
      return { [key]: doc._id, ...codec.read(doc as unknown as Record<string, unknown>) } as R;
    },
  };
}

/** A keyset page request over a collection, with an optional filter (e.g. `{ userId, readAt: null }`). */
export interface MongoPageRequest<D> extends PageRequest {
  filter?: FilterQuery<D>;
}

/** The common operations of one collection, returning records. `session` is the one of the store's `write`. */
export interface MongoCollection<R, D extends MongoKeyedDoc> extends MongoDocCodec<R, D> {
  readonly model: Model<D>;
  /** Inserts the records in order (a duplicate key throws the driver's error: the store's `write` maps it). */
  insert(records: R | readonly R[], session?: ClientSession | null): Promise<void>;
  findById(id: string, session?: ClientSession | null): Promise<R | null>;
  /** One query for all ids (duplicates ignored); unknown ids are absent; order not guaranteed. */
  findByIds(ids: readonly string[]): Promise<R[]>;
  /** Applies `update` (e.g. `{ $set: {...} }`) to the document and returns the record after it; null when none. */
  updateById(id: string, update: UpdateQuery<D>, session?: ClientSession | null): Promise<R | null>;
  /** Deletes the document and returns its record; null when there was none. */
  removeById(id: string, session?: ClientSession | null): Promise<R | null>;
  /**
   * The page of `first` records matching `filter`, ordered by `_id` (`asc` by default, `desc` for newest first
   * with UUIDv7 keys), starting after `afterId` (excluded), with `hasNextPage`. An index on the filter's fields and
   * `_id` serves it.
   */
  page(request: MongoPageRequest<D>): Promise<Page<R>>;
  /** How many documents match `filter` (all by default). */
  count(filter?: FilterQuery<D>): Promise<number>;
}

/** The common operations of `model`'s collection, mapped by the field table of `options`. */
export function mongoCollection<R, D extends MongoKeyedDoc>(
  model: Model<D>,
  options: MongoDocsOptions<R, D>,
): MongoCollection<R, D> {
  const codec = mongoDocs(options);
  const { fromDoc } = codec;
  const byId = (id: string) => ({ _id: id }) as FilterQuery<D>;
  return {
    ...codec,
    model,

    async insert(records, session = null) {
      const list = (Array.isArray(records) ? records : [records]) as readonly R[];
      if (list.length === 0) return;
      // `ordered` keeps the order; inside a transaction `create` of several documents requires it.
      await model.create(list.map(codec.toDoc), { session, ordered: true });
    },

    async findById(id, session = null) {
      const doc = await model.findOne(byId(id)).session(session).lean<D>().exec();
      return doc ? fromDoc(doc) : null;
    },

    async findByIds(ids) {
      if (ids.length === 0) return [];
      const filter = { _id: { $in: [...new Set(ids)] } } as FilterQuery<D>;
      const docs = await model.find(filter).lean<D[]>().exec();
      return docs.map(fromDoc);
    },

    async updateById(id, update, session = null) {
      const doc = await model
        .findOneAndUpdate(byId(id), update, { session, returnDocument: 'after' })
        .lean<D>()
        .exec();
      return doc ? fromDoc(doc) : null;
    },

    async removeById(id, session = null) {
      const doc = await model.findOneAndDelete(byId(id), { session }).lean<D>().exec();
      return doc ? fromDoc(doc) : null;
    },

    async page({ first, afterId, order = 'asc', filter = {} }) {
      const limit = pageLimit(first);
      const after =
        afterId === undefined ? undefined : { _id: { [order === 'desc' ? '$lt' : '$gt']: afterId } };
      // A filter on `_id` itself is kept apart from the key condition rather than overwritten by it.
      const query = (
        after === undefined ? filter : '_id' in filter ? { $and: [filter, after] } : { ...filter, ...after }
      ) as FilterQuery<D>;
      // One document more than asked for: it only tells whether a next page exists.
      const docs = await model
        .find(query)
        .sort({ _id: order === 'desc' ? -1 : 1 })
        .limit(limit + 1)
        .lean<D[]>()
        .exec();
      return pageOf(docs, limit, fromDoc);
    },

    async count(filter = {}) {
      return model.countDocuments(filter).exec();
    },
  };
}

export interface MongoEventStoreOptions<M extends Record<string, MongoModelLike>>
  extends MongoConnectionOptions {
  /** Registers the store's own models on the connection (`connection.model(...)`), by name. */
  models: (connection: Connection) => M;
  /** Turns the store's duplicate-key errors into domain errors (`mapDuplicateKey` with the store's mapping). */
  mapError: (error: unknown) => unknown;
  /** Options of the processed event ids (retention, clock). */
  processedEvents?: ProcessedEventsOptions;
}

/** A MongoDB store that writes events (outbox) and consumes them idempotently (processed event ids). */
export interface MongoEventStore<M> extends MongoStoreKit {
  readonly connection: Connection;
  /** The store's own models, as `options.models` returned them. */
  readonly models: M;
  /** The outbox: `outbox.write(events, session)` inside `write`, so the events commit with the state change. */
  readonly outbox: MongoOutbox;
  readonly processed: MongoProcessedEvents;
  /** The relay-facing outbox methods, to spread into the store (`...base.relay`). */
  readonly relay: OutboxStore;
  /**
   * Runs `effect` once per (`consumer`, `eventId`) inside a `write`: the effect (its writes and outbox events,
   * all with the session it is given) and the record of the id commit together. Returns the effect's result, or
   * `duplicate` (nothing ran) when the id was recorded already.
   */
  once<T>(
    consumer: string,
    eventId: string,
    effect: (session: ClientSession | null) => Promise<T>,
  ): Promise<T | 'duplicate'>;
}

/**
 * Connects a store on a connection of its own (`connectMongo`), registers its models, the outbox and the
 * processed event ids (`processed_events`, TTL 30 days by default: longer than the stream keeps events), creates
 * the collections, synchronises the indexes and detects transactions (`setUpMongoStore`). The connection is closed
 * again when any of it fails.
 */
export async function connectMongoEventStore<M extends Record<string, MongoModelLike>>(
  options: MongoEventStoreOptions<M>,
): Promise<MongoEventStore<M>> {
  const { models: register, mapError, processedEvents, ...connectionOptions } = options;
  const connection = await connectMongo(connectionOptions);
  let models: M;
  let outbox: MongoOutbox;
  let processed: MongoProcessedEvents;
  try {
    models = register(connection);
    outbox = createMongoOutbox(connection);
    processed = createMongoProcessedEvents(connection, processedEvents);
  } catch (error) {
    await connection.close().catch(() => {});
    throw error;
  }
  const kit = await setUpMongoStore(
    connection,
    [...Object.values(models), processed.model, ...outbox.models],
    mapError,
  );
  return {
    ...kit,
    connection,
    models,
    outbox,
    processed,
    relay: outboxMethods(outbox),
    async once(consumer, eventId, effect) {
      return kit.write(async (session) => {
        const outcome = await processed.runOnce(session, consumer, eventId, () => effect(session));
        return outcome.duplicate ? ('duplicate' as const) : outcome.result;
      });
    },
  };
}
