import { describeMongo } from '@aiva/shared/testing';
import mongoose from 'mongoose';
import { afterAll, describe, expect, it } from 'vitest';
import {
  connectMongoNotificationStore,
  notificationCollections,
  registerNotificationModels,
} from '../src/store/mongo.js';
import {
  at,
  makeDelivery,
  makeNotification,
  notificationStoreContract,
  personId,
} from './notification.store.contract.js';

// The one infrastructure gate of these tests: there is no MongoDB server unless MONGODB_URL points at one.
describeMongo('MongoDB notification store', { dbPrefix: 'aiva_notifications_test' }, (mongo) => {
  let dbName = '';
  notificationStoreContract('mongo', {
    async open() {
      dbName = mongo.freshDbName();
      return connectMongoNotificationStore({ url: mongo.url, dbName });
    },
    // A second connection to the same database: another instance of the subgraph.
    openPeer: async () => connectMongoNotificationStore({ url: mongo.url, dbName }),
  });
});

describe('MongoDB notification store without a server', () => {
  it('rejects when no server answers', async () => {
    await expect(
      connectMongoNotificationStore({
        url: 'mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200&connectTimeoutMS=200',
      }),
    ).rejects.toThrow();
  });
});

// Server-free checks of the documents the store writes: mongoose validates and serialises them without a server.
describe('MongoDB notification store documents', () => {
  const connection = mongoose.createConnection(); // never connected
  const models = registerNotificationModels(connection);
  const { notifications, subscriptions, contacts, deliveries } = notificationCollections(models);

  afterAll(async () => {
    await connection.close();
  });

  it('stores notifications as given: empty texts, empty and null data, read or not', () => {
    const userId = personId();
    for (const notification of [
      makeNotification(userId, { title: '', body: '', data: {} }),
      makeNotification(userId, { data: null, readAt: at(1000) }),
      makeNotification(userId),
    ]) {
      const doc = new models.Notification(notifications.toDoc(notification));
      expect(doc.validateSync()).toBeUndefined();
      const stored = doc.toBSON(); // what the driver is given
      const { id, ...fields } = notification;
      expect(stored).toEqual({ _id: id, ...fields });
      expect(notifications.fromDoc(stored)).toEqual(notification);
    }
  });

  it('stores deliveries held by nobody, with their message as given', () => {
    const userId = personId();
    const delivery = makeDelivery(userId, null, { message: { template: 'code', values: {} } });
    const doc = new models.Delivery(deliveries.toDoc(delivery));
    expect(doc.validateSync()).toBeUndefined();
    const stored = doc.toBSON();
    const { id, ...fields } = delivery;
    expect(stored).toEqual({ _id: id, ...fields, leaseUntil: null });
    expect(deliveries.fromDoc(stored)).toEqual(delivery);
  });

  it('stores contacts and push subscriptions under their keys', () => {
    const userId = personId();
    const contact = { userId, email: null, smsNumber: '+15550100', updatedAt: at(0) };
    const contactDoc = new models.Contact(contacts.toDoc(contact));
    expect(contactDoc.validateSync()).toBeUndefined();
    expect(contactDoc.toBSON()).toEqual({
      _id: userId,
      email: null,
      smsNumber: '+15550100',
      updatedAt: at(0),
    });
    expect(contacts.fromDoc(contactDoc.toBSON())).toEqual(contact);

    const subscription = {
      endpoint: 'https://push.example/1',
      userId,
      p256dh: 'k',
      auth: 'a',
      createdAt: at(0),
    };
    const subscriptionDoc = new models.PushSubscription(subscriptions.toDoc(subscription));
    expect(subscriptionDoc.validateSync()).toBeUndefined();
    expect(subscriptions.fromDoc(subscriptionDoc.toBSON())).toEqual(subscription);
  });

  it('keeps one preference per person, category and channel', () => {
    const doc = new models.Preference({
      userId: personId(),
      category: 'activity',
      channel: 'push',
      enabled: false,
    });
    expect(doc.validateSync()).toBeUndefined();
    expect(models.Preference.schema.indexes()).toContainEqual([
      { userId: 1, category: 1, channel: 1 },
      expect.objectContaining({ unique: true }),
    ]);
  });
});
