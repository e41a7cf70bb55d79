import { type AivaEvent, pageLimit } from '@aiva/shared';
import {
  connectMongoEventStore,
  type MongoConnectionOptions,
  type MongoDocOf,
  mongoCollection,
} from '@aiva/shared/mongo';
import { type ClientSession, type Connection, type FilterQuery, Schema } from 'mongoose';
import {
  CONTACT_FIELDS,
  type ContactRecord,
  DELIVERY_FIELDS,
  type DeliveryRecord,
  type EventEffects,
  NOTIFICATION_FIELDS,
  type NotificationRecord,
  type NotificationStore,
  type PreferenceRecord,
  PUSH_SUBSCRIPTION_FIELDS,
  type PushSubscriptionRecord,
} from './notification.store.js';

/** `url` (e.g. `mongodb://localhost:27017/?replicaSet=rs0`) and an optional `dbName` overriding the URL's. */
export type MongoNotificationStoreOptions = MongoConnectionOptions;

/** A notification as stored (`_id` is its UUIDv7 id: newest first is `_id` descending). */
type NotificationDoc = MongoDocOf<NotificationRecord>;

/** A preference as stored: `_id` is an ObjectId; (userId, category, channel) is unique. */
type PreferenceDoc = PreferenceRecord;

/** A push subscription as stored: `_id` is the endpoint (a browser belongs to one person at a time). */
type PushSubscriptionDoc = MongoDocOf<PushSubscriptionRecord, 'endpoint'>;

/** A contact as stored: `_id` is the user id. */
type ContactDoc = MongoDocOf<ContactRecord, 'userId'>;

/** A delivery as stored, with the hold of the worker sending it (`null`, or past: free to claim). */
type DeliveryDoc = MongoDocOf<DeliveryRecord> & { leaseUntil: Date | null };

// Free-text fields are not `required`: mongoose rejects empty strings for required String paths, and input
// validation is the service's job. `minimize: false` keeps empty objects in JSON fields (`data: {}` must not read
// back as null). `autoIndex` is off because indexes are synchronised explicitly (and awaited) at connect.
const SCHEMA_OPTIONS = { versionKey: false, id: false, autoIndex: false, minimize: false } as const;

const notificationSchema = new Schema<NotificationDoc>(
  {
    _id: { type: String, required: true },
    userId: { type: String, required: true },
    category: { type: String, required: true },
    title: { type: String },
    body: { type: String },
    data: { type: Schema.Types.Mixed, default: null },
    readAt: { type: Date, default: null },
    createdAt: { type: Date, required: true },
  },
  { collection: 'notifications', ...SCHEMA_OPTIONS },
);
// Serves the inbox (newest first) and removing a person's notifications.
notificationSchema.index({ userId: 1, _id: -1 }, { name: 'notifications_user' });
// Serves the unread count, the unread-only inbox and "mark all read": only unread notifications are in it
// (an equality on null is allowed in a partial filter, and `readAt: null` queries imply it). Its key differs
// from the one above in direction only (either is scanned both ways): two indexes on one key pattern, one of them
// partial, are refused by older servers.
notificationSchema.index(
  { userId: 1, _id: 1 },
  { name: 'notifications_user_unread', partialFilterExpression: { readAt: null } },
);

const preferenceSchema = new Schema<PreferenceDoc>(
  {
    userId: { type: String, required: true },
    category: { type: String, required: true },
    channel: { type: String, required: true },
    enabled: { type: Boolean, required: true },
  },
  { collection: 'preferences', ...SCHEMA_OPTIONS },
);
preferenceSchema.index(
  { userId: 1, category: 1, channel: 1 },
  { unique: true, name: 'preferences_user_category_channel_unique' },
);

const pushSubscriptionSchema = new Schema<PushSubscriptionDoc>(
  {
    _id: { type: String, required: true },
    userId: { type: String, required: true },
    p256dh: { type: String },
    auth: { type: String },
    createdAt: { type: Date, required: true },
  },
  { collection: 'push_subscriptions', ...SCHEMA_OPTIONS },
);
pushSubscriptionSchema.index({ userId: 1 }, { name: 'push_subscriptions_user' });

const contactSchema = new Schema<ContactDoc>(
  {
    _id: { type: String, required: true },
    email: { type: String, default: null },
    smsNumber: { type: String, default: null },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'contacts', ...SCHEMA_OPTIONS },
);

const deliverySchema = new Schema<DeliveryDoc>(
  {
    _id: { type: String, required: true },
    userId: { type: String, required: true },
    notificationId: { type: String, default: null },
    channel: { type: String, required: true },
    target: { type: String },
    message: { type: Schema.Types.Mixed, required: true },
    status: { type: String, required: true },
    attempts: { type: Number, required: true },
    lastError: { type: String, default: null },
    nextAttemptAt: { type: Date, required: true },
    leaseUntil: { type: Date, default: null },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'deliveries', ...SCHEMA_OPTIONS },
);
// Serves the claim of due deliveries (status in queued/retrying, nextAttemptAt ≤ now, oldest due first; `_id`
// breaks ties, so the two statuses' ranges merge in order without a sort in memory).
deliverySchema.index({ status: 1, nextAttemptAt: 1, _id: 1 }, { name: 'deliveries_due' });
// Serve the delivery log of a person (oldest first) and of a notification, and removing a person's deliveries.
deliverySchema.index({ userId: 1, _id: 1 }, { name: 'deliveries_user' });
deliverySchema.index({ notificationId: 1, _id: 1 }, { name: 'deliveries_notification' });

/**
 * Registers the store's models on `connection` (names unique per connection). Exported for the server-free tests
 * of the documents the store writes.
 */
export function registerNotificationModels(connection: Connection) {
  return {
    Notification: connection.model<NotificationDoc>('Notification', notificationSchema),
    Preference: connection.model<PreferenceDoc>('NotificationPreference', preferenceSchema),
    PushSubscription: connection.model<PushSubscriptionDoc>('PushSubscription', pushSubscriptionSchema),
    Contact: connection.model<ContactDoc>('Contact', contactSchema),
    Delivery: connection.model<DeliveryDoc>('Delivery', deliverySchema),
  };
}

type NotificationModels = ReturnType<typeof registerNotificationModels>;

/** The record ↔ document mapping and common operations of the collections holding whole records. */
export function notificationCollections(models: NotificationModels) {
  return {
    notifications: mongoCollection(models.Notification, { fields: NOTIFICATION_FIELDS }),
    subscriptions: mongoCollection(models.PushSubscription, {
      fields: PUSH_SUBSCRIPTION_FIELDS,
      key: 'endpoint',
    }),
    contacts: mongoCollection(models.Contact, { fields: CONTACT_FIELDS, key: 'userId' }),
    // A new delivery is held by nobody.
    deliveries: mongoCollection(models.Delivery, {
      fields: DELIVERY_FIELDS,
      derived: () => ({ leaseUntil: null }),
    }),
  };
}

/** The statuses of deliveries still to be sent. */
const PENDING_STATUSES: ReadonlyArray<DeliveryRecord['status']> = ['queued', 'retrying'];

/**
 * Connects the MongoDB notification store on its own connection (not mongoose's global default connection),
 * creates the collections and synchronises their indexes. Same behaviour as the SQLite store: consumed events
 * and person removals are applied once per (consumer, event id), their writes and the processed mark in one
 * transaction (replica set; see `MongoStoreKit.write` for a standalone server).
 */
export async function connectMongoNotificationStore(
  options: MongoNotificationStoreOptions,
): Promise<NotificationStore> {
  const store = await connectMongoEventStore({
    ...options,
    models: registerNotificationModels,
    // No write of this store is a user's conflict: a duplicate id is a bug and stays the driver's error.
    mapError: (error) => error,
  });
  const { Notification, Preference, PushSubscription, Contact, Delivery } = store.models;
  const { notifications, subscriptions, contacts, deliveries } = notificationCollections(store.models);

  const unread = (userId: string): FilterQuery<NotificationDoc> => ({ userId, readAt: null });
  const findNotification = async (userId: string, id: string) => {
    const doc = await Notification.findOne({ _id: id, userId }).lean<NotificationDoc>().exec();
    return doc ? notifications.fromDoc(doc) : null;
  };

  /** The address from an event: sets the email, keeps the SMS number (null for a new contact). */
  const upsertContactEmail = (contact: NonNullable<EventEffects['contact']>, session: ClientSession | null) =>
    Contact.updateOne(
      { _id: contact.userId },
      { $set: { email: contact.email, updatedAt: contact.at }, $setOnInsert: { smsNumber: null } },
      { upsert: true },
    )
      .session(session)
      .exec();

  const writeEffects = async (effects: EventEffects, session: ClientSession | null) => {
    if (effects.notification) await notifications.insert(effects.notification, session);
    await deliveries.insert(effects.deliveries, session);
    if (effects.contact) await upsertContactEmail(effects.contact, session);
  };

  /**
   * Writes an event of this subgraph (a requested notification) to the outbox; the relay publishes it. Spread
   * in until the port declares `requestNotification` (an extra property written out would not typecheck yet).
   */
  const publishing = {
    async requestNotification(event: AivaEvent): Promise<void> {
      await store.write((session) => store.outbox.write([event], session));
    },
  };

  return {
    kind: 'mongo',

    async applyEvent(consumer, eventId, effects) {
      return (
        (await store.once(consumer, eventId, (session) => writeEffects(effects, session))) !== 'duplicate'
      );
    },

    async listNotifications(userId, page) {
      const result = await notifications.page({
        first: page.first,
        afterId: page.beforeId,
        order: 'desc',
        filter: page.unreadOnly ? unread(userId) : { userId },
      });
      return { notifications: result.items, hasNextPage: result.hasNextPage };
    },

    async countUnread(userId) {
      return notifications.count(unread(userId));
    },

    findNotification,

    async markRead(userId, id, at) {
      // Only an unread one changes (readAt is set once); a read one is returned as it is.
      const doc = await Notification.findOneAndUpdate(
        { _id: id, ...unread(userId) },
        { $set: { readAt: at } },
        { returnDocument: 'after' },
      )
        .lean<NotificationDoc>()
        .exec();
      return doc ? notifications.fromDoc(doc) : findNotification(userId, id);
    },

    async markAllRead(userId, at) {
      const result = await Notification.updateMany(unread(userId), { $set: { readAt: at } }).exec();
      return result.modifiedCount;
    },

    async preferences(userId) {
      const docs = await Preference.find({ userId })
        .sort({ category: 1, channel: 1 })
        .lean<PreferenceDoc[]>()
        .exec();
      return docs.map((doc) => ({
        userId: doc.userId,
        category: doc.category,
        channel: doc.channel,
        enabled: doc.enabled,
      }));
    },

    async setPreferences(list) {
      if (list.length === 0) return;
      // All or none, like the SQLite transaction.
      await store.write(async (session) => {
        for (const { userId, category, channel, enabled } of list) {
          await Preference.updateOne({ userId, category, channel }, { $set: { enabled } }, { upsert: true })
            .session(session)
            .exec();
        }
      });
    },

    async contact(userId) {
      return contacts.findById(userId);
    },

    async setSmsNumber(userId, smsNumber, at) {
      await Contact.updateOne(
        { _id: userId },
        { $set: { smsNumber, updatedAt: at }, $setOnInsert: { email: null } },
        { upsert: true },
      ).exec();
    },

    async savePushSubscription(subscription) {
      // Keyed by endpoint: a subscription of another person under the same endpoint moves to this one.
      const { _id, ...fields } = subscriptions.toDoc(subscription);
      await PushSubscription.updateOne({ _id }, { $set: fields }, { upsert: true }).exec();
    },

    async removePushSubscription(userId, endpoint) {
      const result = await PushSubscription.deleteOne({ _id: endpoint, userId }).exec();
      return result.deletedCount > 0;
    },

    async forgetPushEndpoint(endpoint) {
      await PushSubscription.deleteOne({ _id: endpoint }).exec();
    },

    async pushSubscriptions(userId) {
      const docs = await PushSubscription.find({ userId })
        .sort({ createdAt: 1, _id: 1 })
        .lean<PushSubscriptionDoc[]>()
        .exec();
      return docs.map(subscriptions.fromDoc);
    },

    async claimDueDeliveries(now, leaseUntil, limit) {
      // One atomic find-and-modify per delivery, conditioned on the delivery being due and its hold free or
      // ended: of several workers claiming at once, exactly one matches a given delivery (the others' updates
      // see it held, or conflict and re-evaluate). No transaction: a claim commits on its own.
      const n = pageLimit(limit);
      const claimed: DeliveryRecord[] = [];
      while (claimed.length < n) {
        const doc = await Delivery.findOneAndUpdate(
          {
            // Not again within this call, even when `leaseUntil` is not after `now`.
            _id: { $nin: claimed.map((d) => d.id) },
            status: { $in: PENDING_STATUSES },
            nextAttemptAt: { $lte: now },
            $or: [{ leaseUntil: null }, { leaseUntil: { $lte: now } }],
          },
          { $set: { leaseUntil } },
          { sort: { nextAttemptAt: 1, _id: 1 }, returnDocument: 'after' },
        )
          .lean<DeliveryDoc>()
          .exec();
        if (!doc) break;
        claimed.push(deliveries.fromDoc(doc));
      }
      return claimed;
    },

    async purgeDeliveries(before) {
      const result = await Delivery.deleteMany({
        status: { $in: ['sent', 'failed'] },
        updatedAt: { $lt: before },
      }).exec();
      return result.deletedCount;
    },

    async finishDelivery(id, outcome, at) {
      await Delivery.updateOne(
        { _id: id },
        {
          $set: {
            status: outcome.status,
            attempts: outcome.attempts,
            lastError: outcome.lastError,
            nextAttemptAt: outcome.nextAttemptAt,
            leaseUntil: null,
            updatedAt: at,
          },
        },
      ).exec();
    },

    async deliveries(filter) {
      if (filter.userId === undefined && filter.notificationId === undefined) return [];
      const query: FilterQuery<DeliveryDoc> = {};
      if (filter.userId !== undefined) query.userId = filter.userId;
      if (filter.notificationId !== undefined) query.notificationId = filter.notificationId;
      const docs = await Delivery.find(query).sort({ _id: 1 }).lean<DeliveryDoc[]>().exec();
      return docs.map(deliveries.fromDoc);
    },

    async removePerson(consumer, eventId, userId) {
      const outcome = await store.once(consumer, eventId, async (session) => {
        await Notification.deleteMany({ userId }).session(session).exec();
        await Preference.deleteMany({ userId }).session(session).exec();
        await PushSubscription.deleteMany({ userId }).session(session).exec();
        await Contact.deleteOne({ _id: userId }).session(session).exec();
        await Delivery.deleteMany({ userId }).session(session).exec();
      });
      return outcome !== 'duplicate';
    },

    ...publishing,
    ...store.relay,
    ping: store.ping,
    close: store.close,
  };
}
