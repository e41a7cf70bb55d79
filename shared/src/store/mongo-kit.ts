// MongoDB helpers shared by the services' stores (`@aiva/shared/mongo`): a dedicated connection with deadlines,
// collection and index setup, transactional writes with a standalone fallback, duplicate-key mapping, the outbox
// collection (with quarantine and the relay lease) and idempotent consumers (processed event ids).
// A subpath of its own so that services without MongoDB never load mongoose.
import mongoose, { type ClientSession, type Connection, type Model, Schema } from 'mongoose';
import { conflict } from '../errors.js';
import type { AivaEvent } from '../events/event.js';
import type { OutboxStore, QuarantinedEvent } from '../events/outbox.js';
import {
  type Once,
  PROCESSED_EVENTS_RETENTION_MS,
  type ProcessedEventsOptions,
} from '../events/processed-events.js';
import { DEFAULT_MONGO_TIMEOUTS, type MongoTimeouts } from './mongo-config.js';

export {
  DEFAULT_MONGO_TIMEOUTS,
  type MongoTimeouts,
  mongoEnvSchema,
  mongoTimeoutsOf,
} from './mongo-config.js';

export interface MongoConnectionOptions extends MongoTimeouts {
  /** A MongoDB connection string, e.g. `mongodb://localhost:27017/?replicaSet=rs0`. */
  url: string;
  /** Overrides the database named in the URL. */
  dbName?: string;
}

/** Whether the connection string sets a driver option itself (`...?serverSelectionTimeoutMS=200`): it wins. */
function urlSets(url: string, option: string): boolean {
  const query = url.split('?')[1] ?? '';
  return query.split('&').some((pair) => pair.split('=')[0]?.toLowerCase() === option.toLowerCase());
}

/** The operation deadline of a connection made by `connectMongo` (`maxTimeMS` of its queries). */
export function operationTimeoutOf(connection: Connection): number {
  const value = Number(connection.get('maxTimeMS'));
  return Number.isFinite(value) && value > 0 ? value : DEFAULT_MONGO_TIMEOUTS.operationTimeoutMs;
}

/**
 * Opens a connection of its own (not mongoose's global default connection), with deadlines: server selection,
 * connect and socket timeouts on the driver, and `maxTimeMS` on every query and find-and-modify of its models
 * (mongoose's connection-wide option). An option written in the URL's query wins over the one given here.
 */
export async function connectMongo(options: MongoConnectionOptions): Promise<Connection> {
  const timeouts = { ...DEFAULT_MONGO_TIMEOUTS, ...definedOnly(options) };
  const driverTimeouts: Record<string, number> = {};
  const put = (option: string, value: number) => {
    if (!urlSets(options.url, option)) driverTimeouts[option] = value;
  };
  put('serverSelectionTimeoutMS', timeouts.serverSelectionTimeoutMs);
  put('socketTimeoutMS', timeouts.socketTimeoutMs);
  put('connectTimeoutMS', timeouts.connectTimeoutMs);
  const connection = await mongoose
    .createConnection(options.url, {
      ...(options.dbName !== undefined ? { dbName: options.dbName } : {}),
      bufferCommands: false, // fail fast instead of queueing while disconnected
      ...driverTimeouts,
    })
    .asPromise();
  connection.set('maxTimeMS', timeouts.operationTimeoutMs);
  return connection;
}

function definedOnly(timeouts: MongoTimeouts): MongoTimeouts {
  return Object.fromEntries(
    Object.entries({
      operationTimeoutMs: timeouts.operationTimeoutMs,
      serverSelectionTimeoutMs: timeouts.serverSelectionTimeoutMs,
      socketTimeoutMs: timeouts.socketTimeoutMs,
      connectTimeoutMs: timeouts.connectTimeoutMs,
    }).filter(([, value]) => value !== undefined && value > 0),
  );
}

/** The fields of a driver error the helpers read. */
export interface MongoErrorLike {
  code?: unknown;
  message?: unknown;
  keyPattern?: Record<string, unknown>;
  keyValue?: Record<string, unknown>;
  writeErrors?: Array<{ err?: MongoErrorLike; errmsg?: unknown }>;
}

/** One unique index whose violation is a CONFLICT on an input field. */
export interface DuplicateKeyField {
  /** The indexed key, as the error's `keyPattern` / `keyValue` names it. */
  key: string;
  /** Found in the message when the error carries no key pattern (usually the index name); omit to match by key only. */
  index?: string;
  /** Only map the violation when the message names the collection (the key is unique in other collections too). */
  requireCollection?: boolean;
  /** The CONFLICT message and the `field` extension. */
  message: string;
  field: string;
}

export interface DuplicateKeyMapping {
  /** The collection whose violations are mapped; duplicates in any other collection are left alone. */
  collection: string;
  /** Checked in order; the first match wins. */
  fields: readonly DuplicateKeyField[];
}

/**
 * Turns a duplicate-key error (code 11000) on `mapping.collection` into the CONFLICT error of the first matching
 * field; anything else, including duplicates in other collections (a duplicate event id in `outbox`, say), is
 * returned as is.
 */
export function mapDuplicateKey(error: unknown, mapping: DuplicateKeyMapping): unknown {
  if (typeof error !== 'object' || error === null) return error;
  const e = error as MongoErrorLike;
  if (e.code !== 11000) return error;
  const text = `${String(e.message ?? '')} ${String(e.writeErrors?.[0]?.errmsg ?? '')}`;
  // "E11000 duplicate key error collection: <db>.<collection> index: ...".
  const collection = /collection: [^\s]*?\.([^.\s]+) index/.exec(text)?.[1];
  if (collection !== undefined && collection !== mapping.collection) return error;
  const keys = Object.keys(e.keyPattern ?? e.keyValue ?? e.writeErrors?.[0]?.err?.keyPattern ?? {});
  for (const field of mapping.fields) {
    const matches =
      keys.includes(field.key) ||
      (field.index !== undefined && keys.length === 0 && text.includes(field.index));
    if (matches && (!field.requireCollection || collection !== undefined)) {
      return conflict(field.message, { field: field.field });
    }
  }
  return error;
}

/** The server error a standalone mongod returns for any operation inside a transaction. */
export function isTransactionsUnsupported(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as MongoErrorLike;
  const text = String(message ?? '');
  return (
    /Transaction numbers are only allowed on a replica set member or mongos/i.test(text) ||
    (code === 20 && /transaction/i.test(text))
  );
}

/** Whether the deployment can run multi-document transactions: a replica set member or a mongos. */
async function detectTransactions(connection: Connection): Promise<boolean> {
  try {
    const hello = await connection.db!.admin().command({ hello: 1 });
    return typeof hello.setName === 'string' || hello.msg === 'isdbgrid';
  } catch {
    return true; // unknown: try, and fall back on the first "transactions unsupported" error
  }
}

/** The part of a mongoose `Model` that `setUpMongoStore` uses. */
export interface MongoModelLike {
  init(): Promise<unknown>;
  syncIndexes(): Promise<unknown>;
}

/** What every MongoDB store does the same way once its models are set up. */
export interface MongoStoreKit {
  /**
   * Runs a write and its outbox inserts atomically in a transaction when the deployment supports them (replica
   * set or sharded cluster). The commit has the operation deadline (`maxCommitTimeMS`), and the driver's retries
   * of transient errors stop once that deadline has passed (instead of its own 120 seconds). On a standalone mongod (error code 20 "Transaction numbers are only allowed on a
   * replica set member or mongos") it falls back to running `fn` without a session: the state change first,
   * then the outbox documents. That keeps "no event without its state change", but a crash between the two
   * writes loses the event - acceptable for development only; run a (single-node) replica set in production.
   * Errors pass through the store's `mapError`.
   */
  write<T>(fn: (session: ClientSession | null) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  /** Closes the connection; calling it again is harmless. */
  close(): Promise<void>;
}

/**
 * Creates the models' collections, synchronises their indexes (schemas are `autoIndex: false`: this awaits
 * them) and detects transaction support. Closes the connection and rethrows when any of it fails.
 */
export async function setUpMongoStore(
  connection: Connection,
  models: readonly MongoModelLike[],
  mapError: (error: unknown) => unknown,
): Promise<MongoStoreKit> {
  let transactions: boolean;
  try {
    // Collections must exist before the first write: servers before 4.4 cannot create them inside a transaction.
    await Promise.all(models.map((model) => model.init()));
    await Promise.all(models.map((model) => model.syncIndexes()));
    transactions = await detectTransactions(connection);
  } catch (error) {
    await connection.close().catch(() => {});
    throw error;
  }

  let closed = false;
  const budgetMs = operationTimeoutOf(connection);

  return {
    async write<T>(fn: (session: ClientSession | null) => Promise<T>): Promise<T> {
      if (transactions) {
        try {
          let result!: T;
          let attempt = 0;
          const deadline = Date.now() + budgetMs;
          // `connection.transaction` retries `fn` on transient errors (for up to 120 s); mongoose aborts on a
          // throw. A plain error (no TransientTransactionError label) ends the retries once the deadline passed.
          await connection.transaction(
            async (session) => {
              if (attempt++ > 0 && Date.now() > deadline) {
                throw new Error(`MongoDB transaction still failing after ${budgetMs} ms; giving up`);
              }
              result = await fn(session);
            },
            { maxCommitTimeMS: budgetMs },
          );
          return result;
        } catch (error) {
          if (!isTransactionsUnsupported(error)) throw mapError(error);
          transactions = false; // nothing was written: the failing operation was the first one in the transaction
        }
      }
      try {
        return await fn(null);
      } catch (error) {
        throw mapError(error);
      }
    },

    async ping() {
      const db = connection.db;
      if (!db) throw new Error('MongoDB connection is not open');
      await db.admin().ping();
    },

    async close() {
      if (closed) return;
      closed = true;
      await connection.close();
    },
  };
}

/**
 * Published outbox documents are deleted when marked published; the TTL index on `publishedAt` (this long) only
 * catches documents published by older code.
 */
const PUBLISHED_RETENTION_SECONDS = 7 * 24 * 60 * 60;
/** Errors are kept short in the document (they name ids, types and zod paths, never data). */
const MAX_ERROR_LENGTH = 500;
const LEASE_NAME = 'relay';
const DEFAULT_QUARANTINE_LIST = 100;

/**
 * One outbox document per event. `_id` is the event id: a UUIDv7, so sorting by `_id` is sorting by creation
 * time (at millisecond resolution across processes, exactly within one process) and doubles as the `seq`.
 * `attempts`, `lastError` and `quarantinedAt` describe failed publishes (absent in documents of older code:
 * a missing field matches `null`).
 */
export interface MongoOutboxDoc {
  _id: string;
  type: string;
  source: string;
  occurredAt: string;
  payload: unknown;
  createdAt: Date;
  publishedAt: Date | null;
  attempts?: number;
  lastError?: string | null;
  quarantinedAt?: Date | null;
}

/** The relay lease of an outbox: one document, `_id` = `relay`. */
export interface MongoOutboxLeaseDoc {
  _id: string;
  owner: string;
  expiresAt: Date;
}

const outboxSchema = new Schema<MongoOutboxDoc>(
  {
    _id: { type: String, required: true },
    type: { type: String, required: true },
    source: { type: String, required: true },
    occurredAt: { type: String, required: true },
    payload: { type: Schema.Types.Mixed, required: true },
    createdAt: { type: Date, required: true },
    publishedAt: { type: Date, default: null },
    attempts: { type: Number, default: 0 },
    lastError: { type: String, default: null },
    quarantinedAt: { type: Date, default: null },
  },
  { collection: 'outbox', versionKey: false, id: false, autoIndex: false, minimize: false },
);
// Serves `pendingEvents` (publishedAt: null, sorted by _id; quarantined documents are rare and filtered).
outboxSchema.index({ publishedAt: 1, _id: 1 }, { name: 'outbox_pending' });
// Serves `quarantinedEvents` and the stats: only quarantined documents are in it.
outboxSchema.index(
  { quarantinedAt: 1, _id: 1 },
  { name: 'outbox_quarantined', partialFilterExpression: { quarantinedAt: { $type: 'date' } } },
);
// Deletes published events after the retention period; unpublished ones (publishedAt null) never expire.
outboxSchema.index(
  { publishedAt: 1 },
  { name: 'outbox_published_ttl', expireAfterSeconds: PUBLISHED_RETENTION_SECONDS },
);

const leaseSchema = new Schema<MongoOutboxLeaseDoc>(
  {
    _id: { type: String, required: true },
    owner: { type: String, required: true },
    expiresAt: { type: Date, required: true },
  },
  { collection: 'outbox_relay_lease', versionKey: false, id: false, autoIndex: false },
);

function toOutboxDoc(event: AivaEvent): MongoOutboxDoc {
  return {
    _id: event.id,
    type: event.type,
    source: event.source,
    occurredAt: event.occurredAt,
    payload: event.data,
    createdAt: new Date(),
    publishedAt: null,
    attempts: 0,
    lastError: null,
    quarantinedAt: null,
  };
}

function fromOutboxDoc(doc: MongoOutboxDoc): AivaEvent {
  return {
    id: doc._id,
    type: doc.type,
    occurredAt: doc.occurredAt,
    source: doc.source,
    data: doc.payload,
  } as AivaEvent;
}

function isDuplicateKey(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as MongoErrorLike).code === 11000;
}

/** The `outbox` collection of a MongoDB store: `write` inside the store's own writes, the rest for the relay. */
export interface MongoOutbox extends OutboxStore {
  /** The `Outbox` model. */
  readonly model: Model<MongoOutboxDoc>;
  /** The outbox's models (`Outbox` and its relay lease); pass them to `setUpMongoStore` with the store's own. */
  readonly models: readonly MongoModelLike[];
  /** Stores the events, in order, in the session of the write that makes the state change they describe. */
  write(events: readonly AivaEvent[], session: ClientSession | null): Promise<void>;
}

/**
 * Registers the `Outbox` model (collection `outbox`, with its pending, quarantine and TTL indexes) and the relay
 * lease (`outbox_relay_lease`) on the connection.
 *
 * The lease is one document taken with one atomic `findOneAndUpdate` (upsert): it matches when the lease is ours
 * or expired; when another owner holds it, the upsert collides with the existing `_id` (duplicate key) and the
 * lease is not taken. Expiry is judged by the caller's clock: keep the instances' clocks within a few seconds of
 * each other (NTP); a skew shortens the lease by as much.
 */
export function createMongoOutbox(connection: Connection): MongoOutbox {
  const Outbox = connection.model<MongoOutboxDoc>('Outbox', outboxSchema);
  const Lease = connection.model<MongoOutboxLeaseDoc>('OutboxRelayLease', leaseSchema);
  let legacyPurged = false;
  const pendingFilter = { publishedAt: null, quarantinedAt: null };
  const quarantinedFilter = { quarantinedAt: { $ne: null } };
  return {
    model: Outbox,
    models: [Outbox, Lease],

    async write(events, session) {
      if (events.length === 0) return;
      // `ordered` keeps the events' order; inside a transaction `create` of several documents requires it.
      await Outbox.create(events.map(toOutboxDoc), { session, ordered: true });
    },

    async pendingEvents(limit) {
      const n = Math.max(0, Math.floor(limit));
      if (n === 0) return [];
      const docs = await Outbox.find(pendingFilter).sort({ _id: 1 }).limit(n).lean<MongoOutboxDoc[]>().exec();
      return docs.map(fromOutboxDoc);
    },

    async markPublished(ids) {
      if (ids.length === 0) return;
      // A published event's document goes at once: the event lives on in the bus, and the store keeps no copy
      // of its data (events may carry sealed secrets and personal data). Documents published before this rule
      // (kept with publishedAt set, otherwise removed by the TTL index) go on the first call.
      await Outbox.deleteMany({ _id: { $in: [...ids] }, publishedAt: null }).exec();
      if (!legacyPurged) {
        await Outbox.deleteMany({ publishedAt: { $ne: null } }).exec();
        legacyPurged = true;
      }
    },

    async recordFailure(id, failure) {
      const doc = await Outbox.findOneAndUpdate(
        { _id: id, ...pendingFilter },
        { $inc: { attempts: 1 }, $set: { lastError: failure.error.slice(0, MAX_ERROR_LENGTH) } },
        { returnDocument: 'after', projection: { attempts: 1 } },
      )
        .lean<Pick<MongoOutboxDoc, '_id' | 'attempts'>>()
        .exec();
      if (!doc) return { attempts: 0, quarantined: false };
      const attempts = doc.attempts ?? 1;
      const quarantined = failure.permanent || attempts >= Math.max(1, Math.floor(failure.maxAttempts));
      // Only the holder of the relay lease records failures, so the two steps do not race.
      if (quarantined) await Outbox.updateOne({ _id: id }, { $set: { quarantinedAt: new Date() } }).exec();
      return { attempts, quarantined };
    },

    async quarantinedEvents(limit = DEFAULT_QUARANTINE_LIST) {
      const n = Math.max(0, Math.floor(limit));
      if (n === 0) return [];
      const docs = await Outbox.find(quarantinedFilter)
        .sort({ _id: 1 })
        .limit(n)
        .lean<MongoOutboxDoc[]>()
        .exec();
      return docs.map(
        (doc): QuarantinedEvent => ({
          event: fromOutboxDoc(doc),
          attempts: doc.attempts ?? 0,
          error: doc.lastError ?? '',
          quarantinedAt: new Date(doc.quarantinedAt ?? doc.createdAt),
        }),
      );
    },

    async replayQuarantined(ids) {
      if (ids !== undefined && ids.length === 0) return 0;
      const filter = ids === undefined ? quarantinedFilter : { ...quarantinedFilter, _id: { $in: [...ids] } };
      const result = await Outbox.updateMany(filter, { $set: { quarantinedAt: null, attempts: 0 } }).exec();
      return result.modifiedCount;
    },

    async discardQuarantined(ids) {
      if (ids.length === 0) return 0;
      const result = await Outbox.deleteMany({ ...quarantinedFilter, _id: { $in: [...ids] } }).exec();
      return result.deletedCount;
    },

    async outboxStats() {
      const [pending, quarantined] = await Promise.all([
        Outbox.countDocuments(pendingFilter).exec(),
        Outbox.countDocuments(quarantinedFilter).exec(),
      ]);
      return { pending, quarantined };
    },

    async acquireRelayLease(owner, leaseMs) {
      const now = new Date();
      try {
        const doc = await Lease.findOneAndUpdate(
          { _id: LEASE_NAME, $or: [{ owner }, { expiresAt: { $lte: now } }] },
          { $set: { owner, expiresAt: new Date(now.getTime() + Math.max(1, leaseMs)) } },
          { upsert: true, returnDocument: 'after' },
        )
          .lean<MongoOutboxLeaseDoc>()
          .exec();
        return doc?.owner === owner;
      } catch (error) {
        // The lease exists and is another owner's: the upsert's insert collided with its `_id`.
        if (isDuplicateKey(error)) return false;
        throw error;
      }
    },

    async releaseRelayLease(owner) {
      await Lease.deleteOne({ _id: LEASE_NAME, owner }).exec();
    },
  };
}

/** An event a consumer of the store processed: `_id` is `<consumer>:<event id>`. */
export interface MongoProcessedEventDoc {
  _id: string;
  processedAt: Date;
}

/** Idempotent consumers over a MongoDB store: the effect and the record of its event id commit together. */
export interface MongoProcessedEvents {
  /** The `ProcessedEvent` model (collection `processed_events`); pass it to `setUpMongoStore`. */
  readonly model: Model<MongoProcessedEventDoc>;
  /**
   * Call it inside the store's `write` with the write's session: when `consumer` processed `eventId` before,
   * nothing runs (`{ duplicate: true }`); else `effect` runs (its writes must use the same session) and the id is
   * recorded last, in the same session. With transactions everything commits together (a concurrent duplicate
   * conflicts and, retried, finds the id); without them (standalone mongod, development only) a crash between
   * the effect and the record redoes the effect on redelivery.
   */
  runOnce<T>(
    session: ClientSession | null,
    consumer: string,
    eventId: string,
    effect: () => Promise<T>,
  ): Promise<Once<T>>;
  /** Whether `consumer` processed `eventId` (within the retention). */
  has(consumer: string, eventId: string): Promise<boolean>;
}

/**
 * Registers the `ProcessedEvent` model (collection `processed_events`, `_id` `<consumer>:<event id>`) on the
 * connection. A TTL index removes ids after the retention (default 30 days, longer than the stream keeps events).
 */
export function createMongoProcessedEvents(
  connection: Connection,
  options: ProcessedEventsOptions = {},
): MongoProcessedEvents {
  const retentionSeconds = Math.max(
    1,
    Math.round((options.retentionMs ?? PROCESSED_EVENTS_RETENTION_MS) / 1000),
  );
  const now = options.now ?? (() => new Date());
  const schema = new Schema<MongoProcessedEventDoc>(
    { _id: { type: String, required: true }, processedAt: { type: Date, required: true } },
    { collection: 'processed_events', versionKey: false, id: false, autoIndex: false },
  );
  schema.index({ processedAt: 1 }, { name: 'processed_events_ttl', expireAfterSeconds: retentionSeconds });
  const Processed = connection.model<MongoProcessedEventDoc>('ProcessedEvent', schema);
  const key = (consumer: string, eventId: string) => {
    if (!consumer || !eventId) throw new Error('runOnce needs a consumer name and an event id');
    return `${consumer}:${eventId}`;
  };

  return {
    model: Processed,

    async runOnce(session, consumer, eventId, effect) {
      const _id = key(consumer, eventId);
      if (await Processed.exists({ _id }).session(session).exec()) return { duplicate: true };
      const result = await effect();
      try {
        await Processed.create([{ _id, processedAt: now() }], { session });
      } catch (error) {
        // Without a transaction a concurrent delivery recorded it meanwhile: the id is recorded, as wanted.
        if (session === null && isDuplicateKey(error)) return { duplicate: false, result };
        throw error;
      }
      return { duplicate: false, result };
    },

    async has(consumer, eventId) {
      return (await Processed.exists({ _id: key(consumer, eventId) }).exec()) !== null;
    },
  };
}

// The store base and the collection mechanics built on the pieces above.
export * from './mongo-store.js';
