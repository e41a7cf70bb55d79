import { notFound } from '@aiva/shared';
import {
  connectMongoEventStore,
  type MongoConnectionOptions,
  type MongoDocOf,
  mapDuplicateKey as mapMongoDuplicateKey,
  mongoCollection,
} from '@aiva/shared/mongo';
import { type ClientSession, Schema } from 'mongoose';
import {
  ACCOUNT_FIELDS,
  type AccountRecord,
  type AccountStore,
  ONE_TIME_TOKEN_PURPOSES,
  type OneTimeTokenRecord,
  type PendingProfileRemoval,
  PROFILE_REMOVAL_FIELDS,
  TOKEN_FIELDS,
} from './account.store.js';

/** `url` (e.g. `mongodb://localhost:27017/?replicaSet=rs0`) and an optional `dbName` overriding the URL's. */
export type MongoAccountStoreOptions = MongoConnectionOptions;

/** One-time tokens are removed by a TTL index this long after `expiresAt` (they are useless by then). */
const EXPIRED_TOKEN_RETENTION_SECONDS = 24 * 60 * 60;

/** An account as stored (`email` lower-cased, under the unique index). */
type AccountDoc = MongoDocOf<AccountRecord>;

/** A token as stored: `_id` is the token's hash; `newEmail` (lower-cased) is `null` for other purposes. */
type TokenDoc = Omit<MongoDocOf<OneTimeTokenRecord, 'hash'>, 'newEmail'> & { newEmail?: string | null };

/** A pending removal as stored: `_id` is the user id of the profile to remove. */
type RemovalDoc = MongoDocOf<PendingProfileRemoval, 'userId'>;

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
  const store = await connectMongoEventStore({
    ...options,
    models: (connection) => ({
      Account: connection.model<AccountDoc>('Account', accountSchema),
      Token: connection.model<TokenDoc>('OneTimeToken', tokenSchema),
      Removal: connection.model<RemovalDoc>('PendingProfileRemoval', removalSchema),
    }),
    mapError: mapDuplicateKey,
  });
  const { write, outbox, processed } = store;
  const { Account, Token, Removal } = store.models;
  const accounts = mongoCollection(Account, { fields: ACCOUNT_FIELDS });
  const tokens = mongoCollection(Token, { fields: TOKEN_FIELDS, key: 'hash' });
  const removals = mongoCollection(Removal, { fields: PROFILE_REMOVAL_FIELDS, key: 'userId' });
  // No secret left in the outbox from older code (see PLAINTEXT_TOKEN_EVENT_TYPES).
  await outbox.model
    .deleteMany({ type: { $in: PLAINTEXT_TOKEN_EVENT_TYPES }, 'payload.token': { $not: /^sealed:v1:/ } })
    .exec();

  /** Updates one account by id; false when there is none. */
  async function updateAccount(id: string, set: Partial<AccountDoc>): Promise<boolean> {
    const result = await Account.updateOne({ _id: id }, { $set: set }).exec();
    return result.matchedCount > 0;
  }

  /** Deletes the account and its tokens (in the write's session); false when there is none. */
  async function removeAccount(id: string, session: ClientSession | null): Promise<boolean> {
    if (!(await accounts.removeById(id, session))) return false;
    await Token.deleteMany({ accountId: id }, { session: session ?? undefined }).exec();
    return true;
  }

  return {
    kind: 'mongo',

    async insert(account, events) {
      await write(async (session) => {
        await accounts.insert({ ...account, email: account.email.toLowerCase() }, session);
        await outbox.write(events, session);
      });
    },

    async findById(id) {
      return accounts.findById(id);
    },

    async findByIds(ids) {
      return accounts.findByIds(ids);
    },

    async findByEmail(email) {
      const doc = await Account.findOne({ email: email.toLowerCase() }).lean<AccountDoc>().exec();
      return doc ? accounts.fromDoc(doc) : null;
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
      return write((session) => removeAccount(id, session));
    },

    async removeForEvent(consumer, eventId, id) {
      // In the write's transaction: the removal and the record of the event id commit together.
      return store.once(consumer, eventId, async (session) =>
        (await removeAccount(id, session)) ? ('removed' as const) : ('missing' as const),
      );
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
        await tokens.insert({ ...token, newEmail: token.newEmail?.toLowerCase() }, session);
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
      return doc ? tokens.fromDoc(doc) : null;
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
        claimed.push(removals.fromDoc(doc));
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
      return docs.map(removals.fromDoc);
    },

    ...store.relay,
    ping: store.ping,
    close: store.close,
  };
}
