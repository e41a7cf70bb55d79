import { type AivaEvent, conflict, notFound } from '@aiva/shared';
import mongoose, { type ClientSession, type Connection, Schema } from 'mongoose';
import type {
  AccountRecord,
  AccountStore,
  OneTimeTokenPurpose,
  OneTimeTokenRecord,
} from './account.store.js';

export interface MongoAccountStoreOptions {
  /** A MongoDB connection string, e.g. `mongodb://localhost:27017/?replicaSet=rs0`. */
  url: string;
  /** Overrides the database named in the URL. */
  dbName?: string;
}

/** Published outbox documents are removed by a TTL index this long after `publishedAt`. */
const PUBLISHED_RETENTION_SECONDS = 7 * 24 * 60 * 60;
/** One-time tokens are removed by a TTL index this long after `expiresAt` (they are useless by then). */
const EXPIRED_TOKEN_RETENTION_SECONDS = 24 * 60 * 60;

interface AccountDoc {
  _id: string;
  /** Lower-cased; carries the unique index. */
  email: string;
  passwordHash: string;
  emailVerified: boolean;
  roles: string[];
  createdAt: Date;
  updatedAt: Date;
  passwordChangedAt: Date;
}

/** `_id` is the token's hash. */
interface TokenDoc {
  _id: string;
  purpose: OneTimeTokenPurpose;
  accountId: string;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
}

/** One outbox document per event; `_id` is the event id (a UUIDv7, so it sorts by creation time). */
interface OutboxDoc {
  _id: string;
  type: string;
  source: string;
  occurredAt: string;
  payload: unknown;
  createdAt: Date;
  publishedAt: Date | null;
}

// `autoIndex` is off because indexes are synchronised explicitly (and awaited) at connect.
const accountSchema = new Schema<AccountDoc>(
  {
    _id: { type: String, required: true },
    email: { type: String, required: true },
    passwordHash: { type: String, required: true },
    emailVerified: { type: Boolean, required: true },
    roles: { type: [String], default: [] },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
    passwordChangedAt: { type: Date, required: true },
  },
  { collection: 'accounts', versionKey: false, id: false, autoIndex: false },
);
accountSchema.index({ email: 1 }, { unique: true, name: 'accounts_email_unique' });

const tokenSchema = new Schema<TokenDoc>(
  {
    _id: { type: String, required: true },
    purpose: { type: String, required: true, enum: ['password_reset', 'email_verification'] },
    accountId: { type: String, required: true },
    createdAt: { type: Date, required: true },
    expiresAt: { type: Date, required: true },
    usedAt: { type: Date, default: null },
  },
  { collection: 'one_time_tokens', versionKey: false, id: false, autoIndex: false },
);
// Serves `remove` (the account's tokens go with it).
tokenSchema.index({ accountId: 1 }, { name: 'tokens_account' });
tokenSchema.index(
  { expiresAt: 1 },
  { name: 'tokens_expired_ttl', expireAfterSeconds: EXPIRED_TOKEN_RETENTION_SECONDS },
);

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

function toDoc(account: AccountRecord): AccountDoc {
  return {
    _id: account.id,
    email: account.email.toLowerCase(),
    passwordHash: account.passwordHash,
    emailVerified: account.emailVerified,
    roles: [...account.roles],
    createdAt: account.createdAt,
    updatedAt: account.updatedAt,
    passwordChangedAt: account.passwordChangedAt,
  };
}

function fromDoc(doc: AccountDoc): AccountRecord {
  return {
    id: doc._id,
    email: doc.email,
    passwordHash: doc.passwordHash,
    emailVerified: Boolean(doc.emailVerified),
    roles: [...(doc.roles ?? [])],
    createdAt: new Date(doc.createdAt),
    updatedAt: new Date(doc.updatedAt),
    passwordChangedAt: new Date(doc.passwordChangedAt),
  };
}

function tokenToDoc(token: OneTimeTokenRecord): TokenDoc {
  return {
    _id: token.hash,
    purpose: token.purpose,
    accountId: token.accountId,
    createdAt: token.createdAt,
    expiresAt: token.expiresAt,
    usedAt: token.usedAt,
  };
}

function tokenFromDoc(doc: TokenDoc): OneTimeTokenRecord {
  return {
    hash: doc._id,
    purpose: doc.purpose,
    accountId: doc.accountId,
    createdAt: new Date(doc.createdAt),
    expiresAt: new Date(doc.expiresAt),
    usedAt: doc.usedAt ? new Date(doc.usedAt) : null,
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

interface MongoErrorLike {
  code?: unknown;
  message?: unknown;
  keyPattern?: Record<string, unknown>;
  keyValue?: Record<string, unknown>;
  writeErrors?: Array<{ err?: MongoErrorLike; errmsg?: unknown }>;
}

/**
 * Turns duplicate-key errors (code 11000) on `accounts` into CONFLICT errors (field `email` or `id`); anything
 * else, including duplicates in `one_time_tokens` and `outbox`, is returned as is. Exported for tests.
 */
export function mapDuplicateKey(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) return error;
  const e = error as MongoErrorLike;
  if (e.code !== 11000) return error;
  const text = `${String(e.message ?? '')} ${String(e.writeErrors?.[0]?.errmsg ?? '')}`;
  // "E11000 duplicate key error collection: <db>.<collection> index: ...": only accounts are mapped.
  const collection = /collection: [^\s]*?\.([^.\s]+) index/.exec(text)?.[1];
  if (collection !== undefined && collection !== 'accounts') return error;
  const keys = Object.keys(e.keyPattern ?? e.keyValue ?? e.writeErrors?.[0]?.err?.keyPattern ?? {});
  const has = (field: string, index: string) =>
    keys.includes(field) || (keys.length === 0 && text.includes(index));
  if (has('email', 'accounts_email_unique')) {
    return conflict('An account with this email already exists', { field: 'email' });
  }
  if (has('_id', 'index: _id_') && collection === 'accounts') {
    return conflict('An account with this id already exists', { field: 'id' });
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
 * Connects the MongoDB account store on its own connection (not mongoose's global default connection),
 * creates the collections and synchronises their indexes.
 */
export async function connectMongoAccountStore(options: MongoAccountStoreOptions): Promise<AccountStore> {
  const connection = await mongoose
    .createConnection(options.url, {
      ...(options.dbName !== undefined ? { dbName: options.dbName } : {}),
      bufferCommands: false, // fail fast instead of queueing while disconnected
    })
    .asPromise();

  const Account = connection.model<AccountDoc>('Account', accountSchema);
  const Token = connection.model<TokenDoc>('OneTimeToken', tokenSchema);
  const Outbox = connection.model<OutboxDoc>('Outbox', outboxSchema);
  let transactions: boolean;
  try {
    // Collections must exist before the first write: servers before 4.4 cannot create them inside a transaction.
    await Promise.all([Account.init(), Token.init(), Outbox.init()]);
    await Promise.all([Account.syncIndexes(), Token.syncIndexes(), Outbox.syncIndexes()]);
    transactions = await detectTransactions(connection);
  } catch (error) {
    await connection.close().catch(() => {});
    throw error;
  }

  /**
   * Runs a write and its outbox inserts atomically in a transaction when the deployment supports them (replica
   * set or sharded cluster). On a standalone mongod it falls back to running `fn` without a session: the state
   * change first, then the outbox documents. That keeps "no event without its state change", but a crash
   * between the two writes loses the event - acceptable for development only.
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

  async function writeEvents(events: readonly AivaEvent[], session: ClientSession | null): Promise<void> {
    if (events.length === 0) return;
    // `ordered` keeps the events' order; inside a transaction `create` of several documents requires it.
    await Outbox.create(events.map(toOutboxDoc), { session, ordered: true });
  }

  /** Updates one account by id; false when there is none. */
  async function updateAccount(id: string, set: Partial<AccountDoc>): Promise<boolean> {
    const result = await Account.updateOne({ _id: id }, { $set: set }).exec();
    return result.matchedCount > 0;
  }

  let closed = false;

  return {
    kind: 'mongo',

    async insert(account, events) {
      await write(async (session) => {
        await Account.create([toDoc(account)], { session });
        await writeEvents(events, session);
      });
    },

    async findById(id) {
      const doc = await Account.findOne({ _id: id }).lean<AccountDoc>().exec();
      return doc ? fromDoc(doc) : null;
    },

    async findByIds(ids) {
      if (ids.length === 0) return [];
      const docs = await Account.find({ _id: { $in: [...new Set(ids)] } })
        .lean<AccountDoc[]>()
        .exec();
      return docs.map(fromDoc);
    },

    async findByEmail(email) {
      const doc = await Account.findOne({ email: email.toLowerCase() }).lean<AccountDoc>().exec();
      return doc ? fromDoc(doc) : null;
    },

    async updatePassword(id, passwordHash, changedAt) {
      return updateAccount(id, { passwordHash, passwordChangedAt: changedAt, updatedAt: changedAt });
    },

    async setEmailVerified(id, at) {
      return updateAccount(id, { emailVerified: true, updatedAt: at });
    },

    async setRoles(id, roles, at) {
      return updateAccount(id, { roles: [...roles], updatedAt: at });
    },

    async remove(id) {
      return write(async (session) => {
        const doc = await Account.findOneAndDelete({ _id: id }, { session }).lean<AccountDoc>().exec();
        if (!doc) return false;
        await Token.deleteMany({ accountId: id }, { session: session ?? undefined }).exec();
        return true;
      });
    },

    async insertToken(token, events) {
      await write(async (session) => {
        // Like the SQLite foreign key: no token for an unknown account. (Without transactions a concurrent
        // `remove` may still leave an orphan; consuming it then finds no account.)
        const owner = await Account.exists({ _id: token.accountId }).session(session).exec();
        if (!owner) throw notFound('No account with this id', { field: 'accountId' });
        await Token.create([tokenToDoc(token)], { session });
        await writeEvents(events, session);
      });
    },

    async consumeToken(hash, purpose, now) {
      // One atomic document update: of concurrent consumers exactly one matches `usedAt: null`.
      const doc = await Token.findOneAndUpdate(
        { _id: hash, purpose, usedAt: null, expiresAt: { $gt: now } },
        { $set: { usedAt: now } },
        { returnDocument: 'before' },
      )
        .lean<TokenDoc>()
        .exec();
      return doc ? tokenFromDoc(doc) : null;
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
