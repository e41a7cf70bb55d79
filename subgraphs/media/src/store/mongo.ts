import { type AivaEvent, pageLimit } from '@aiva/shared';
import {
  connectMongoEventStore,
  type MongoConnectionOptions,
  type MongoDocOf,
  mongoCollection,
} from '@aiva/shared/mongo';
import { type ClientSession, type Connection, type FilterQuery, Schema, type UpdateQuery } from 'mongoose';
import {
  MEDIA_FIELDS,
  type MediaRecord,
  type MediaStatus,
  type MediaStore,
  type MediaVariant,
} from './media.store.js';

/** `url` (e.g. `mongodb://localhost:27017/?replicaSet=rs0`) and an optional `dbName` overriding the URL's. */
export type MongoMediaStoreOptions = MongoConnectionOptions;

/** A media item as stored (`_id` is its UUIDv7 id: newest first is `_id` descending). */
type MediaDoc = MongoDocOf<MediaRecord>;

// Free-text fields are not `required`: mongoose rejects empty strings for required String paths, and input
// validation is the service's job. `autoIndex` is off because indexes are synchronised explicitly (and awaited) at
// connect. `minimize: false` keeps empty values as given.
const SCHEMA_OPTIONS = { versionKey: false, id: false, autoIndex: false, minimize: false } as const;

/** One rendition, stored inside its item (no `_id` of its own: the record's variants have none). */
const variantSchema = new Schema<MediaVariant>(
  {
    name: { type: String },
    key: { type: String },
    mimeType: { type: String },
    width: { type: Number, default: null },
    height: { type: Number, default: null },
    size: { type: Number, required: true },
  },
  { _id: false, id: false, versionKey: false, minimize: false },
);

const mediaSchema = new Schema<MediaDoc>(
  {
    _id: { type: String, required: true },
    ownerId: { type: String, required: true },
    kind: { type: String, required: true },
    filename: { type: String },
    mimeType: { type: String },
    size: { type: Number, required: true },
    sha256: { type: String, default: null },
    status: { type: String, required: true },
    failureReason: { type: String, default: null },
    visibility: { type: String, required: true },
    width: { type: Number, default: null },
    height: { type: Number, default: null },
    durationSeconds: { type: Number, default: null },
    pageCount: { type: Number, default: null },
    variants: { type: [variantSchema], default: [] },
    sourceKey: { type: String, default: null },
    textKey: { type: String, default: null },
    textLength: { type: Number, default: null },
    progress: { type: Number, default: null },
    attempts: { type: Number, required: true },
    nextAttemptAt: { type: Date, default: null },
    leaseUntil: { type: Date, default: null },
    leaseToken: { type: String, default: null },
    uploadExpiresAt: { type: Date, required: true },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'media', ...SCHEMA_OPTIONS },
);
// The indexes of the SQLite store, one for one.
// A person's media newest first (and their used bytes, their removal); with a kind: the kind filter.
mediaSchema.index({ ownerId: 1, _id: -1 }, { name: 'media_owner' });
mediaSchema.index({ ownerId: 1, kind: 1, _id: -1 }, { name: 'media_owner_kind' });
// Renditions to reuse for identical bytes of a person.
mediaSchema.index({ ownerId: 1, sha256: 1 }, { name: 'media_owner_sha' });
// How many items still reference a source key.
mediaSchema.index({ sourceKey: 1 }, { name: 'media_source' });
// The claim of due items (status UPLOADED or PROCESSING, nextAttemptAt ≤ now, oldest due first; `_id` breaks
// ties, so the two statuses' ranges merge in order without a sort in memory). Not partial like SQLite's: an `$in`
// in a partial filter is refused by servers before 6.0; the status prefix serves the same range.
mediaSchema.index({ status: 1, nextAttemptAt: 1, _id: 1 }, { name: 'media_due' });
// Uploads never finished: only AWAITING_UPLOAD items are in it (an equality is allowed in a partial filter).
mediaSchema.index(
  { uploadExpiresAt: 1, _id: 1 },
  { name: 'media_awaiting', partialFilterExpression: { status: 'AWAITING_UPLOAD' } },
);

/**
 * Registers the store's model on `connection` (names unique per connection). Exported for the server-free tests
 * of the documents the store writes.
 */
export function registerMediaModels(connection: Connection) {
  return { Media: connection.model<MediaDoc>('Media', mediaSchema) };
}

type MediaModels = ReturnType<typeof registerMediaModels>;

/** The record ↔ document mapping and common operations of the `media` collection. */
export function mediaCollection(models: MediaModels) {
  return mongoCollection(models.Media, { fields: MEDIA_FIELDS });
}

/** The statuses an item is claimable in (queued after upload, or held by a worker whose lease may have ended). */
const CLAIMABLE: readonly MediaStatus[] = ['UPLOADED', 'PROCESSING'];

/** The claim `token` holds: what every outcome of processing is conditioned on (fencing). */
const heldBy = (id: string, token: string): FilterQuery<MediaDoc> => ({
  _id: id,
  leaseToken: token,
  status: 'PROCESSING',
});

/** Clears the claim and the queue entry: the item is done with (READY or FAILED). */
const RELEASED = { nextAttemptAt: null, leaseUntil: null, leaseToken: null } as const;

/**
 * Connects the MongoDB media store on its own connection (not mongoose's global default connection), creates the
 * collections and synchronises their indexes. Same behaviour as the SQLite store: conditional updates, outcomes
 * fenced by the claim's token, events written with their state change in one transaction (replica set; see
 * `MongoStoreKit.write` for a standalone server), consumed events applied once per (consumer, event id).
 */
export async function connectMongoMediaStore(options: MongoMediaStoreOptions): Promise<MediaStore> {
  const store = await connectMongoEventStore({
    ...options,
    models: registerMediaModels,
    // No write of this store is a user's conflict: a duplicate id is a bug and stays the driver's error.
    mapError: (error) => error,
  });
  const { Media } = store.models;
  const { write, outbox } = store;
  const media = mediaCollection(store.models);

  /** Applies `update` to the document matching `filter`; whether one matched (SQLite's `changes > 0`). */
  const updateWhere = async (
    filter: FilterQuery<MediaDoc>,
    update: UpdateQuery<MediaDoc>,
    session: ClientSession | null = null,
  ): Promise<boolean> => {
    const result = await Media.updateOne(filter, update).session(session).exec();
    return result.matchedCount > 0;
  };

  /** A conditional update and, when it matched, its event: in one transaction (the outbox pattern). */
  const updateWithEvent = (
    filter: FilterQuery<MediaDoc>,
    update: UpdateQuery<MediaDoc>,
    event: AivaEvent,
  ): Promise<boolean> =>
    write(async (session) => {
      const changed = await updateWhere(filter, update, session);
      if (changed) await outbox.write([event], session);
      return changed;
    });

  /** Claims one due item not claimed in this call yet; null when none is left. */
  const claimOne = async (now: Date, leaseUntil: Date, token: string, skip: readonly string[]) => {
    // One atomic find-and-modify, conditioned on the item being due and its lease free or ended: of several
    // workers claiming at once, exactly one matches a given item (the others' updates see it held, or conflict
    // and re-evaluate). No transaction: a claim commits on its own.
    const doc = await Media.findOneAndUpdate(
      {
        // Not again within this call, even when `leaseUntil` is not after `now`.
        _id: { $nin: [...skip] },
        status: { $in: [...CLAIMABLE] },
        nextAttemptAt: { $ne: null, $lte: now },
        $or: [{ leaseUntil: null }, { leaseUntil: { $lte: now } }],
      },
      { $set: { status: 'PROCESSING', leaseUntil, leaseToken: token, updatedAt: now } },
      { sort: { nextAttemptAt: 1, _id: 1 }, returnDocument: 'after' },
    )
      .lean<MediaDoc>()
      .exec();
    return doc ? media.fromDoc(doc) : null;
  };

  /** Removes one unfinished upload past its time; null when none is left. */
  const removeOneExpired = async (now: Date) => {
    // One atomic find-and-delete: of two instances cleaning up at once, only one gets (and removes the bytes of)
    // a given upload.
    const doc = await Media.findOneAndDelete(
      { status: 'AWAITING_UPLOAD', uploadExpiresAt: { $lte: now } },
      { sort: { uploadExpiresAt: 1, _id: 1 } },
    )
      .lean<MediaDoc>()
      .exec();
    return doc ? media.fromDoc(doc) : null;
  };

  return {
    kind: 'mongo',

    async insert(record) {
      await media.insert(record);
    },

    async find(id) {
      return media.findById(id);
    },

    async findMany(ids) {
      return media.findByIds(ids);
    },

    async listByOwner(ownerId, page) {
      const result = await media.page({
        first: page.first,
        afterId: page.beforeId ?? undefined,
        order: 'desc',
        filter: page.kind === undefined ? { ownerId } : { ownerId, kind: page.kind },
      });
      return { media: result.items, hasNextPage: result.hasNextPage };
    },

    async usedBytes(ownerId) {
      // Every item but FAILED ones whose bytes were never stored (`sourceKey: null` also matches a missing one).
      const [total] = await Media.aggregate<{ bytes: number }>([
        { $match: { ownerId, $nor: [{ status: 'FAILED', sourceKey: null }] } },
        { $group: { _id: null, bytes: { $sum: '$size' } } },
      ]).exec();
      return total?.bytes ?? 0;
    },

    async findReadyBySha(ownerId, sha256, exceptId) {
      const doc = await Media.findOne({ ownerId, sha256, _id: { $ne: exceptId }, status: 'READY' })
        .lean<MediaDoc>()
        .exec();
      return doc ? media.fromDoc(doc) : null;
    },

    async countBySourceKey(sourceKey) {
      return media.count({ sourceKey });
    },

    async markUploaded(id, facts, event, at) {
      const { kind, mimeType, size, sha256, sourceKey } = facts;
      return updateWithEvent(
        { _id: id, status: 'AWAITING_UPLOAD' },
        { $set: { status: 'UPLOADED', kind, mimeType, size, sha256, sourceKey, updatedAt: at } },
        event,
      );
    },

    async markRejected(id, reason, facts, at) {
      // Facts not given keep the declared values (SQLite's `coalesce`), except the hash: unknown means null.
      const set: Partial<MediaDoc> = {
        status: 'FAILED',
        failureReason: reason,
        sha256: facts.sha256 ?? null,
        updatedAt: at,
      };
      if (facts.kind != null) set.kind = facts.kind;
      if (facts.mimeType != null) set.mimeType = facts.mimeType;
      if (facts.size != null) set.size = facts.size;
      return updateWhere({ _id: id, status: 'AWAITING_UPLOAD' }, { $set: set });
    },

    async queueProcessing(consumer, eventId, id, at) {
      const outcome = await store.once(consumer, eventId, async (session) => {
        await updateWhere(
          { _id: id, status: 'UPLOADED' },
          { $set: { nextAttemptAt: at, updatedAt: at } },
          session,
        );
      });
      return outcome !== 'duplicate';
    },

    async claimDue(now, leaseUntil, token, limit) {
      const n = pageLimit(limit);
      const claimed: MediaRecord[] = [];
      while (claimed.length < n) {
        const record = await claimOne(
          now,
          leaseUntil,
          token,
          claimed.map((r) => r.id),
        );
        if (!record) break;
        claimed.push(record);
      }
      return claimed.sort((a, b) => (a.id < b.id ? -1 : 1));
    },

    async renewLease(id, token, leaseUntil, progress) {
      // A null progress keeps the last one (SQLite's `coalesce`).
      const set: Partial<MediaDoc> = progress === null ? { leaseUntil } : { leaseUntil, progress };
      return updateWhere(heldBy(id, token), { $set: set });
    },

    async finishProcessing(id, token, outcome, event, at) {
      if (outcome.status === 'FAILED') {
        return updateWithEvent(
          heldBy(id, token),
          {
            $set: {
              status: 'FAILED',
              failureReason: outcome.reason,
              progress: null,
              ...RELEASED,
              updatedAt: at,
            },
          },
          event,
        );
      }
      const { facts } = outcome;
      return updateWithEvent(
        heldBy(id, token),
        {
          $set: {
            status: 'READY',
            failureReason: null,
            kind: facts.kind,
            width: facts.width,
            height: facts.height,
            durationSeconds: facts.durationSeconds,
            pageCount: facts.pageCount,
            variants: facts.variants.map((variant) => ({ ...variant })),
            textKey: facts.textKey,
            textLength: facts.textLength,
            progress: 1,
            ...RELEASED,
            updatedAt: at,
          },
        },
        event,
      );
    },

    async retryProcessing(id, token, attempts, nextAttemptAt, at) {
      return updateWhere(heldBy(id, token), {
        $set: {
          status: 'UPLOADED',
          attempts,
          nextAttemptAt,
          leaseUntil: null,
          leaseToken: null,
          updatedAt: at,
        },
      });
    },

    async setVisibility(id, visibility, at) {
      return media.updateById(id, { $set: { visibility, updatedAt: at } });
    },

    async delete(id, event) {
      return write(async (session) => {
        const removed = await media.removeById(id, session);
        if (removed) await outbox.write([event], session);
        return removed;
      });
    },

    async removeOwner(consumer, eventId, ownerId, eventOf) {
      return store.once(consumer, eventId, async (session) => {
        const docs = await Media.find({ ownerId })
          .sort({ _id: 1 })
          .session(session)
          .lean<MediaDoc[]>()
          .exec();
        const removed = docs.map(media.fromDoc);
        if (removed.length === 0) return removed;
        // By id: exactly the items read (and given an event) go, even without a transaction.
        await Media.deleteMany({ ownerId, _id: { $in: removed.map((r) => r.id) } })
          .session(session)
          .exec();
        await outbox.write(removed.map(eventOf), session);
        return removed;
      });
    },

    async removeExpiredUploads(now, limit) {
      const n = pageLimit(limit);
      const removed: MediaRecord[] = [];
      while (removed.length < n) {
        const record = await removeOneExpired(now);
        if (!record) break;
        removed.push(record);
      }
      return removed;
    },

    ...store.relay,
    ping: store.ping,
    close: store.close,
  };
}
