import { type AivaEvent, conflict } from '@aiva/shared';
import mongoose, { type ClientSession, type Connection, Schema } from 'mongoose';
import type { UserPage, UserPatch, UserRecord, UserStore } from './user.store.js';

export interface MongoUserStoreOptions {
  /** A MongoDB connection string, e.g. `mongodb://localhost:27017/?replicaSet=rs0`. */
  url: string;
  /** Overrides the database named in the URL. */
  dbName?: string;
}

/** Published outbox documents are removed by a TTL index this long after `publishedAt`. */
const PUBLISHED_RETENTION_SECONDS = 7 * 24 * 60 * 60;

interface UserDoc {
  _id: string;
  email: string;
  /** `email.toLowerCase()`, carrying the unique index (case-insensitive uniqueness). */
  emailLower: string;
  username: string;
  usernameLower: string;
  firstName: string;
  lastName: string;
  displayName: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * One outbox document per event. `_id` is the event id: a UUIDv7, so sorting by `_id` is sorting by creation
 * time (at millisecond resolution across processes, exactly within one process) and doubles as the `seq`.
 */
interface OutboxDoc {
  _id: string;
  type: string;
  source: string;
  occurredAt: string;
  payload: unknown;
  createdAt: Date;
  publishedAt: Date | null;
}

// Names are not `required`: mongoose rejects empty strings for required String paths, and input validation is
// the service's job. `autoIndex` is off because indexes are synchronised explicitly (and awaited) at connect.
const userSchema = new Schema<UserDoc>(
  {
    _id: { type: String, required: true },
    email: { type: String, required: true },
    emailLower: { type: String, required: true },
    username: { type: String, required: true },
    usernameLower: { type: String, required: true },
    firstName: { type: String },
    lastName: { type: String },
    displayName: { type: String, default: null },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'users', versionKey: false, id: false, autoIndex: false },
);
userSchema.index({ emailLower: 1 }, { unique: true, name: 'users_email_lower_unique' });
userSchema.index({ usernameLower: 1 }, { unique: true, name: 'users_username_lower_unique' });

const outboxSchema = new Schema<OutboxDoc>(
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

function toDoc(user: UserRecord): UserDoc {
  return {
    _id: user.id,
    email: user.email,
    emailLower: user.email.toLowerCase(),
    username: user.username,
    usernameLower: user.username.toLowerCase(),
    firstName: user.firstName,
    lastName: user.lastName,
    displayName: user.displayName,
    createdAt: user.createdAt,
    updatedAt: user.updatedAt,
  };
}

function fromDoc(doc: UserDoc): UserRecord {
  return {
    id: doc._id,
    email: doc.email,
    username: doc.username,
    firstName: doc.firstName ?? '',
    lastName: doc.lastName ?? '',
    displayName: doc.displayName ?? null,
    createdAt: new Date(doc.createdAt),
    updatedAt: new Date(doc.updatedAt),
  };
}

function toOutboxDoc(event: AivaEvent): OutboxDoc {
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

function fromOutboxDoc(doc: OutboxDoc): AivaEvent {
  return {
    id: doc._id,
    type: doc.type,
    occurredAt: doc.occurredAt,
    source: doc.source,
    data: doc.payload,
  } as AivaEvent;
}

function patchToSet(patch: UserPatch, updatedAt: Date): Partial<UserDoc> {
  const set: Partial<UserDoc> = { updatedAt };
  if (patch.email !== undefined) {
    set.email = patch.email;
    set.emailLower = patch.email.toLowerCase();
  }
  if (patch.username !== undefined) {
    set.username = patch.username;
    set.usernameLower = patch.username.toLowerCase();
  }
  if (patch.firstName !== undefined) set.firstName = patch.firstName;
  if (patch.lastName !== undefined) set.lastName = patch.lastName;
  if (patch.displayName !== undefined) set.displayName = patch.displayName;
  return set;
}

interface MongoErrorLike {
  code?: unknown;
  message?: unknown;
  keyPattern?: Record<string, unknown>;
  keyValue?: Record<string, unknown>;
  writeErrors?: Array<{ err?: MongoErrorLike; errmsg?: unknown }>;
}

/**
 * Turns duplicate-key errors (code 11000) on `users` into CONFLICT errors; anything else is returned as is.
 * Exported for tests.
 */
export function mapDuplicateKey(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) return error;
  const e = error as MongoErrorLike;
  if (e.code !== 11000) return error;
  const keys = Object.keys(e.keyPattern ?? e.keyValue ?? e.writeErrors?.[0]?.err?.keyPattern ?? {});
  const text = `${String(e.message ?? '')} ${String(e.writeErrors?.[0]?.errmsg ?? '')}`;
  const has = (field: string, index: string) =>
    keys.includes(field) || (keys.length === 0 && text.includes(index));
  // "E11000 duplicate key error collection: <db>.outbox index: _id_ dup key: ..." is a duplicate event id.
  if (/collection: [^.\s]+\.outbox index/.test(text)) return error;
  if (has('emailLower', 'users_email_lower_unique')) {
    return conflict('A user with this email already exists', { field: 'email' });
  }
  if (has('usernameLower', 'users_username_lower_unique')) {
    return conflict('A user with this username already exists', { field: 'username' });
  }
  if (keys.includes('_id')) {
    return conflict('A user with this id already exists', { field: 'id' });
  }
  return error;
}

/** The server error a standalone mongod returns for any operation inside a transaction. Exported for tests. */
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

/**
 * Connects the MongoDB user store on its own connection (not mongoose's global default connection), creates
 * the collections and synchronises their indexes.
 */
export async function connectMongoUserStore(options: MongoUserStoreOptions): Promise<UserStore> {
  const connection = await mongoose
    .createConnection(options.url, {
      ...(options.dbName !== undefined ? { dbName: options.dbName } : {}),
      bufferCommands: false, // fail fast instead of queueing while disconnected
    })
    .asPromise();

  const User = connection.model<UserDoc>('User', userSchema);
  const Outbox = connection.model<OutboxDoc>('Outbox', outboxSchema);
  let transactions: boolean;
  try {
    // Collections must exist before the first write: servers before 4.4 cannot create them inside a transaction.
    await Promise.all([User.init(), Outbox.init()]);
    await Promise.all([User.syncIndexes(), Outbox.syncIndexes()]);
    transactions = await detectTransactions(connection);
  } catch (error) {
    await connection.close().catch(() => {});
    throw error;
  }

  /**
   * Runs a write and its outbox insert atomically in a transaction when the deployment supports them
   * (replica set or sharded cluster). On a standalone mongod (no transactions: error code 20 "Transaction
   * numbers are only allowed on a replica set member or mongos") it falls back to running `fn` without a
   * session: the state change is written first, then the outbox document. That keeps "no event without its
   * state change", but a crash between the two writes loses the event - acceptable for development only; run a
   * (single-node) replica set in production.
   */
  async function write<T>(fn: (session: ClientSession | null) => Promise<T>): Promise<T> {
    if (transactions) {
      try {
        let result!: T;
        // `connection.transaction` retries `fn` on transient errors; mongoose aborts on a throw.
        await connection.transaction(async (session) => {
          result = await fn(session);
        });
        return result;
      } catch (error) {
        if (!isTransactionsUnsupported(error)) throw mapDuplicateKey(error);
        transactions = false; // nothing was written: the failing operation was the first one in the transaction
      }
    }
    try {
      return await fn(null);
    } catch (error) {
      throw mapDuplicateKey(error);
    }
  }

  async function writeEvent(event: AivaEvent, session: ClientSession | null): Promise<void> {
    await Outbox.create([toOutboxDoc(event)], { session });
  }

  let closed = false;

  return {
    kind: 'mongo',

    async insert(user, event) {
      await write(async (session) => {
        await User.create([toDoc(user)], { session });
        await writeEvent(event, session);
      });
      return { ...user };
    },

    async findById(id) {
      const doc = await User.findOne({ _id: id }).lean<UserDoc>().exec();
      return doc ? fromDoc(doc) : null;
    },

    async findByIds(ids) {
      if (ids.length === 0) return [];
      const docs = await User.find({ _id: { $in: [...new Set(ids)] } })
        .lean<UserDoc[]>()
        .exec();
      return docs.map(fromDoc);
    },

    async list({ first, afterId }): Promise<UserPage> {
      const limit = Math.max(0, Math.floor(first));
      const filter = afterId === undefined ? {} : { _id: { $gt: afterId } };
      const docs = await User.find(filter)
        .sort({ _id: 1 })
        .limit(limit + 1)
        .lean<UserDoc[]>()
        .exec();
      return { users: docs.slice(0, limit).map(fromDoc), hasNextPage: docs.length > limit };
    },

    async count() {
      return User.countDocuments({}).exec();
    },

    async update(id, patch, updatedAt, makeEvent) {
      return write(async (session) => {
        const doc = await User.findOneAndUpdate(
          { _id: id },
          { $set: patchToSet(patch, updatedAt) },
          { session, returnDocument: 'after' },
        )
          .lean<UserDoc>()
          .exec();
        if (!doc) return null;
        const updated = fromDoc(doc);
        await writeEvent(makeEvent(updated), session);
        return updated;
      });
    },

    async remove(id, makeEvent) {
      return write(async (session) => {
        const doc = await User.findOneAndDelete({ _id: id }, { session }).lean<UserDoc>().exec();
        if (!doc) return false;
        await writeEvent(makeEvent(fromDoc(doc)), session);
        return true;
      });
    },

    async pendingEvents(limit) {
      const n = Math.max(0, Math.floor(limit));
      if (n === 0) return [];
      const docs = await Outbox.find({ publishedAt: null })
        .sort({ _id: 1 })
        .limit(n)
        .lean<OutboxDoc[]>()
        .exec();
      return docs.map(fromOutboxDoc);
    },

    async markPublished(ids) {
      if (ids.length === 0) return;
      // Old published events are removed by the TTL index on publishedAt, so no cleanup is needed here.
      await Outbox.updateMany(
        { _id: { $in: [...ids] }, publishedAt: null },
        { $set: { publishedAt: new Date() } },
      ).exec();
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
