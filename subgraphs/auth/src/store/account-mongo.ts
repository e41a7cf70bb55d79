import { notFound, outboxMethods } from '@aiva/shared';
import {
  connectMongo,
  createMongoOutbox,
  createMongoProcessedEvents,
  type MongoConnectionOptions,
  mapDuplicateKey as mapMongoDuplicateKey,
  setUpMongoStore,
} from '@aiva/shared/mongo';
import { Schema } from 'mongoose';
import {
  type AccountRecord,
  type AccountStore,
  ONE_TIME_TOKEN_PURPOSES,
  type OneTimeTokenPurpose,
  type OneTimeTokenRecord,
  type PendingProfileRemoval,
} from './account.store.js';

/** `url` (e.g. `mongodb://localhost:27017/?replicaSet=rs0`) and an optional `dbName` overriding the URL's. */
export type MongoAccountStoreOptions = MongoConnectionOptions;

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
  /** `email_change` only: the new address, lower-cased. */
  newEmail?: string | null;
}

/** `_id` is the user id of the profile to remove. */
interface RemovalDoc {
  _id: string;
  createdAt: Date;
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
}

/** Token events of older code carried the token in plaintext: such unpublished events are dropped at connect. */
const PLAINTEXT_TOKEN_EVENT_TYPES = [
  'aiva.auth.password_reset.requested.v1',
  'aiva.auth.email_verification.requested.v1',
];

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
    purpose: { type: String, required: true, enum: [...ONE_TIME_TOKEN_PURPOSES] },
    accountId: { type: String, required: true },
    createdAt: { type: Date, required: true },
    expiresAt: { type: Date, required: true },
    usedAt: { type: Date, default: null },
    newEmail: { type: String, default: null },
  },
  { collection: 'one_time_tokens', versionKey: false, id: false, autoIndex: false },
);
// Serves `remove` (the account's tokens go with it) and `invalidateTokens`.
tokenSchema.index({ accountId: 1 }, { name: 'tokens_account' });
tokenSchema.index(
  { expiresAt: 1 },
  { name: 'tokens_expired_ttl', expireAfterSeconds: EXPIRED_TOKEN_RETENTION_SECONDS },
);

const removalSchema = new Schema<RemovalDoc>(
  {
    _id: { type: String, required: true },
    createdAt: { type: Date, required: true },
    attempts: { type: Number, required: true, default: 0 },
    nextAttemptAt: { type: Date, required: true },
    lastError: { type: String, default: null },
  },
  { collection: 'pending_profile_removals', versionKey: false, id: false, autoIndex: false },
);
removalSchema.index({ nextAttemptAt: 1 }, { name: 'removals_due' });

function removalFromDoc(doc: RemovalDoc): PendingProfileRemoval {
  return {
    userId: doc._id,
    createdAt: new Date(doc.createdAt),
    attempts: doc.attempts ?? 0,
    nextAttemptAt: new Date(doc.nextAttemptAt),
    lastError: doc.lastError ?? null,
  };
}

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
    newEmail: token.newEmail?.toLowerCase() ?? null,
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
    ...(doc.newEmail ? { newEmail: doc.newEmail } : {}),
  };
}

/**
 * Turns duplicate-key errors (code 11000) on `accounts` into CONFLICT errors (field `email` or `id`); anything
 * else, including duplicates in `one_time_tokens` and `outbox`, is returned as is. Exported for tests.
 */
export function mapDuplicateKey(error: unknown): unknown {
  return mapMongoDuplicateKey(error, {
    collection: 'accounts',
    fields: [
      {
        key: 'email',
        index: 'accounts_email_unique',
        message: 'An account with this email already exists',
        field: 'email',
      },
      // `_id` is also the key of `one_time_tokens` and `outbox`: only map it when the message names `accounts`.
      {
        key: '_id',
        index: 'index: _id_',
        requireCollection: true,
        message: 'An account with this id already exists',
        field: 'id',
      },
    ],
  });
}

/**
 * Connects the MongoDB account store on its own connection (not mongoose's global default connection),
 * creates the collections and synchronises their indexes.
 */
export async function connectMongoAccountStore(options: MongoAccountStoreOptions): Promise<AccountStore> {
  const connection = await connectMongo(options);
  const Account = connection.model<AccountDoc>('Account', accountSchema);
  const Token = connection.model<TokenDoc>('OneTimeToken', tokenSchema);
  const Removal = connection.model<RemovalDoc>('PendingProfileRemoval', removalSchema);
  const outbox = createMongoOutbox(connection);
  // Events the consumers processed (`processed_events`, TTL 30 days: longer than the stream keeps events).
  const processed = createMongoProcessedEvents(connection);
  const { write, ping, close } = await setUpMongoStore(
    connection,
    [Account, Token, Removal, processed.model, ...outbox.models],
    mapDuplicateKey,
  );
  // No secret left in the outbox from older code (see PLAINTEXT_TOKEN_EVENT_TYPES).
  await outbox.model
    .deleteMany({ type: { $in: PLAINTEXT_TOKEN_EVENT_TYPES }, 'payload.token': { $not: /^sealed:v1:/ } })
    .exec();

  /** Updates one account by id; false when there is none. */
  async function updateAccount(id: string, set: Partial<AccountDoc>): Promise<boolean> {
    const result = await Account.updateOne({ _id: id }, { $set: set }).exec();
    return result.matchedCount > 0;
  }

  return {
    kind: 'mongo',

    async insert(account, events) {
      await write(async (session) => {
        await Account.create([toDoc(account)], { session });
        await outbox.write(events, session);
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

    async removeForEvent(consumer, eventId, id) {
      return write(async (session) => {
        // In the write's transaction: the removal and the record of the event id commit together.
        const once = await processed.runOnce(session, consumer, eventId, async () => {
          const doc = await Account.findOneAndDelete({ _id: id }, { session }).lean<AccountDoc>().exec();
          if (!doc) return 'missing' as const;
          await Token.deleteMany({ accountId: id }, { session: session ?? undefined }).exec();
          return 'removed' as const;
        });
        return once.duplicate ? ('duplicate' as const) : once.result;
      });
    },

    async hasProcessed(consumer, eventId) {
      return processed.has(consumer, eventId);
    },

    async insertToken(token, events) {
      await write(async (session) => {
        // Like the SQLite foreign key: no token for an unknown account. (Without transactions a concurrent
        // `remove` may still leave an orphan; consuming it then finds no account.)
        const owner = await Account.exists({ _id: token.accountId }).session(session).exec();
        if (!owner) throw notFound('No account with this id', { field: 'accountId' });
        await Token.create([tokenToDoc(token)], { session });
        await outbox.write(events, session);
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

    async invalidateTokens(accountId, purposes, now) {
      if (purposes.length === 0) return 0;
      const result = await Token.updateMany(
        { accountId, usedAt: null, purpose: { $in: [...purposes] } },
        { $set: { usedAt: now } },
      ).exec();
      return result.modifiedCount;
    },

    async changeEmail(id, email, at, events) {
      return write(async (session) => {
        const result = await Account.updateOne(
          { _id: id },
          { $set: { email: email.toLowerCase(), emailVerified: true, updatedAt: at } },
          { session: session ?? undefined },
        ).exec();
        if (result.matchedCount === 0) return false;
        await outbox.write(events, session);
        return true;
      });
    },

    async addProfileRemoval(userId, at, nextAttemptAt = at) {
      await Removal.updateOne(
        { _id: userId },
        { $setOnInsert: { createdAt: at, attempts: 0, nextAttemptAt, lastError: null } },
        { upsert: true },
      ).exec();
    },

    async claimProfileRemovals(now, leaseUntil, limit) {
      const claimed: PendingProfileRemoval[] = [];
      // One atomic update per entry: of concurrent retriers exactly one gets each due entry.
      while (claimed.length < Math.max(0, Math.floor(limit))) {
        const doc = await Removal.findOneAndUpdate(
          { nextAttemptAt: { $lte: now } },
          { $set: { nextAttemptAt: leaseUntil } },
          { sort: { nextAttemptAt: 1, createdAt: 1 }, returnDocument: 'after' },
        )
          .lean<RemovalDoc>()
          .exec();
        if (!doc) break;
        claimed.push(removalFromDoc(doc));
      }
      return claimed.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
    },

    async failProfileRemoval(userId, nextAttemptAt, error) {
      await Removal.updateOne(
        { _id: userId },
        { $inc: { attempts: 1 }, $set: { nextAttemptAt, lastError: error.slice(0, 500) } },
      ).exec();
    },

    async completeProfileRemoval(userId) {
      await Removal.deleteOne({ _id: userId }).exec();
    },

    async pendingProfileRemovals() {
      const docs = await Removal.find({}).sort({ createdAt: 1, _id: 1 }).lean<RemovalDoc[]>().exec();
      return docs.map(removalFromDoc);
    },

    ...outboxMethods(outbox),
    ping,
    close,
  };
}
