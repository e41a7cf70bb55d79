import { outboxMethods } from '@aiva/shared';
import {
  connectMongo,
  createMongoOutbox,
  createMongoProcessedEvents,
  type MongoConnectionOptions,
  mapDuplicateKey as mapMongoDuplicateKey,
  setUpMongoStore,
} from '@aiva/shared/mongo';
import { Schema } from 'mongoose';
import type { UserPage, UserPatch, UserRecord, UserStore } from './user.store.js';

/** `url` (e.g. `mongodb://localhost:27017/?replicaSet=rs0`) and an optional `dbName` overriding the URL's. */
export type MongoUserStoreOptions = MongoConnectionOptions;

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

/**
 * Turns duplicate-key errors (code 11000) on `users` into CONFLICT errors; anything else, including a duplicate
 * event id in `outbox`, is returned as is. Exported for tests.
 */
export function mapDuplicateKey(error: unknown): unknown {
  return mapMongoDuplicateKey(error, {
    collection: 'users',
    fields: [
      {
        key: 'emailLower',
        index: 'users_email_lower_unique',
        message: 'A user with this email already exists',
        field: 'email',
      },
      {
        key: 'usernameLower',
        index: 'users_username_lower_unique',
        message: 'A user with this username already exists',
        field: 'username',
      },
      { key: '_id', message: 'A user with this id already exists', field: 'id' },
    ],
  });
}

/**
 * Connects the MongoDB user store on its own connection (not mongoose's global default connection), creates
 * the collections and synchronises their indexes.
 */
export async function connectMongoUserStore(options: MongoUserStoreOptions): Promise<UserStore> {
  const connection = await connectMongo(options);
  const User = connection.model<UserDoc>('User', userSchema);
  const outbox = createMongoOutbox(connection);
  // Processed ids (`processed_events`, TTL 30 days: longer than the stream keeps events).
  const processed = createMongoProcessedEvents(connection);
  const { write, ping, close } = await setUpMongoStore(
    connection,
    [User, processed.model, ...outbox.models],
    mapDuplicateKey,
  );

  return {
    kind: 'mongo',

    async insert(user, event) {
      await write(async (session) => {
        await User.create([toDoc(user)], { session });
        await outbox.write([event], session);
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
        await outbox.write([makeEvent(updated)], session);
        return updated;
      });
    },

    async remove(id, makeEvent) {
      return write(async (session) => {
        const doc = await User.findOneAndDelete({ _id: id }, { session }).lean<UserDoc>().exec();
        if (!doc) return false;
        await outbox.write([makeEvent(fromDoc(doc))], session);
        return true;
      });
    },

    async syncEmail(change, makeEvent) {
      return write(async (session) => {
        // In the write's transaction: the change, its event and the record of the event id commit together.
        const once = await processed.runOnce(session, change.consumer, change.eventId, async () => {
          const doc = await User.findOne({ _id: change.userId }).session(session).lean<UserDoc>().exec();
          if (!doc) return 'missing' as const;
          if (doc.email === change.email) return 'unchanged' as const;
          const updated = await User.findOneAndUpdate(
            { _id: change.userId },
            { $set: patchToSet({ email: change.email }, change.at) },
            { session, returnDocument: 'after' },
          )
            .lean<UserDoc>()
            .exec();
          if (!updated) return 'missing' as const;
          await outbox.write([makeEvent(fromDoc(updated))], session);
          return 'updated' as const;
        });
        return once.duplicate ? ('duplicate' as const) : once.result;
      });
    },

    ...outboxMethods(outbox),
    ping,
    close,
  };
}
