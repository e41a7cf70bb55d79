import {
  connectMongoEventStore,
  type MongoConnectionOptions,
  type MongoDocOf,
  mapDuplicateKey as mapMongoDuplicateKey,
  mongoCollection,
} from '@aiva/shared/mongo';
import { Schema } from 'mongoose';
import { USER_FIELDS, type UserPatch, type UserRecord, type UserStore, userQueries } from './user.store.js';

/** `url` (e.g. `mongodb://localhost:27017/?replicaSet=rs0`) and an optional `dbName` overriding the URL's. */
export type MongoUserStoreOptions = MongoConnectionOptions;

/** A user as stored: the record with `_id`, and lower-cased copies carrying the unique indexes. */
type UserDoc = MongoDocOf<UserRecord> & { emailLower: string; usernameLower: string };

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
  const store = await connectMongoEventStore({
    ...options,
    models: (connection) => ({ User: connection.model<UserDoc>('User', userSchema) }),
    mapError: mapDuplicateKey,
  });
  const { write, outbox } = store;
  const users = mongoCollection(store.models.User, {
    fields: USER_FIELDS,
    // The lower-cased copies carry the unique indexes (case-insensitive uniqueness).
    derived: (user) => ({ emailLower: user.email.toLowerCase(), usernameLower: user.username.toLowerCase() }),
  });

  return {
    kind: 'mongo',

    async insert(user, event) {
      await write(async (session) => {
        await users.insert(user, session);
        await outbox.write([event], session);
      });
      return { ...user };
    },

    ...userQueries(users),

    async update(id, patch, updatedAt, makeEvent) {
      return write(async (session) => {
        const updated = await users.updateById(id, { $set: patchToSet(patch, updatedAt) }, session);
        if (!updated) return null;
        await outbox.write([makeEvent(updated)], session);
        return updated;
      });
    },

    async remove(id, makeEvent) {
      return write(async (session) => {
        const removed = await users.removeById(id, session);
        if (!removed) return false;
        await outbox.write([makeEvent(removed)], session);
        return true;
      });
    },

    async syncEmail(change, makeEvent) {
      // In the write's transaction: the change, its event and the record of the event id commit together.
      return store.once(change.consumer, change.eventId, async (session) => {
        const user = await users.findById(change.userId, session);
        if (!user) return 'missing' as const;
        if (user.email === change.email) return 'unchanged' as const;
        const updated = await users.updateById(
          change.userId,
          { $set: patchToSet({ email: change.email }, change.at) },
          session,
        );
        if (!updated) return 'missing' as const;
        await outbox.write([makeEvent(updated)], session);
        return 'updated' as const;
      });
    },

    ...store.relay,
    ping: store.ping,
    close: store.close,
  };
}
