// MongoDB helpers shared by the services' stores (`@aiva/shared/mongo`): a dedicated connection, collection and
// index setup, transactional writes with a standalone fallback, duplicate-key mapping and the outbox collection.
// A subpath of its own so that services without MongoDB never load mongoose.
import mongoose, { type ClientSession, type Connection, type Model, Schema } from 'mongoose';
import { conflict } from '../errors.js';
import type { AivaEvent } from '../events/event.js';
import type { OutboxStore } from '../events/outbox.js';

export interface MongoConnectionOptions {
  /** A MongoDB connection string, e.g. `mongodb://localhost:27017/?replicaSet=rs0`. */
  url: string;
  /** Overrides the database named in the URL. */
  dbName?: string;
}

/** Opens a connection of its own (not mongoose's global default connection). */
export async function connectMongo(options: MongoConnectionOptions): Promise<Connection> {
  return mongoose
    .createConnection(options.url, {
      ...(options.dbName !== undefined ? { dbName: options.dbName } : {}),
      bufferCommands: false, // fail fast instead of queueing while disconnected
    })
    .asPromise();
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
   * set or sharded cluster). On a standalone mongod (error code 20 "Transaction numbers are only allowed on a
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

  return {
    async write<T>(fn: (session: ClientSession | null) => Promise<T>): Promise<T> {
      if (transactions) {
        try {
          let result!: T;
          // `connection.transaction` retries `fn` on transient errors; mongoose aborts on a throw.
          await connection.transaction(async (session) => {
            result = await fn(session);
          });
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

/**
 * One outbox document per event. `_id` is the event id: a UUIDv7, so sorting by `_id` is sorting by creation
 * time (at millisecond resolution across processes, exactly within one process) and doubles as the `seq`.
 */
export interface MongoOutboxDoc {
  _id: string;
  type: string;
  source: string;
  occurredAt: string;
  payload: unknown;
  createdAt: Date;
  publishedAt: Date | null;
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
  },
  { collection: 'outbox', versionKey: false, id: false, autoIndex: false, minimize: false },
);
// Serves `pendingEvents` (publishedAt: null, sorted by _id).
outboxSchema.index({ publishedAt: 1, _id: 1 }, { name: 'outbox_pending' });
// Deletes published events after the retention period; unpublished ones (publishedAt null) never expire.
outboxSchema.index(
  { publishedAt: 1 },
  { name: 'outbox_published_ttl', expireAfterSeconds: PUBLISHED_RETENTION_SECONDS },
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

/** The `outbox` collection of a MongoDB store: `write` inside the store's own writes, the rest for the relay. */
export interface MongoOutbox extends OutboxStore {
  /** The `Outbox` model; pass it to `setUpMongoStore` with the store's own models. */
  readonly model: Model<MongoOutboxDoc>;
  /** Stores the events, in order, in the session of the write that makes the state change they describe. */
  write(events: readonly AivaEvent[], session: ClientSession | null): Promise<void>;
}

/** Registers the `Outbox` model (collection `outbox`, with its pending and TTL indexes) on the connection. */
export function createMongoOutbox(connection: Connection): MongoOutbox {
  const Outbox = connection.model<MongoOutboxDoc>('Outbox', outboxSchema);
  let legacyPurged = false;
  return {
    model: Outbox,

    async write(events, session) {
      if (events.length === 0) return;
      // `ordered` keeps the events' order; inside a transaction `create` of several documents requires it.
      await Outbox.create(events.map(toOutboxDoc), { session, ordered: true });
    },

    async pendingEvents(limit) {
      const n = Math.max(0, Math.floor(limit));
      if (n === 0) return [];
      const docs = await Outbox.find({ publishedAt: null })
        .sort({ _id: 1 })
        .limit(n)
        .lean<MongoOutboxDoc[]>()
        .exec();
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
  };
}
