import {
  type AivaEvent,
  openSqliteEventStore,
  pageLimit,
  SQLITE_OUTBOX_RELAY_MIGRATION,
  SQLITE_OUTBOX_SCHEMA,
  SQLITE_PROCESSED_EVENTS_SCHEMA,
  type SqliteRow,
  sqliteTable,
} from '@aiva/shared';
import {
  CONTACT_FIELDS,
  DELIVERY_FIELDS,
  type DeliveryRecord,
  type EventEffects,
  NOTIFICATION_FIELDS,
  type NotificationStore,
  type PreferenceRecord,
  PUSH_SUBSCRIPTION_FIELDS,
} from './notification.store.js';

export interface SqliteNotificationStoreOptions {
  /** Path of the database file (its directory is created when missing), or `':memory:'`. */
  file: string;
}

/**
 * Schema migrations, applied in order (`PRAGMA user_version` counts them). Append new steps, never edit old
 * ones. Timestamps are ISO-8601 UTC text, which compares correctly.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE notifications (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL,
    category   TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    data       TEXT NOT NULL,
    read_at    TEXT NULL,
    created_at TEXT NOT NULL
  ) STRICT;
  CREATE INDEX notifications_user ON notifications (user_id, id);
  CREATE INDEX notifications_user_unread ON notifications (user_id, id) WHERE read_at IS NULL;
  CREATE TABLE preferences (
    user_id  TEXT NOT NULL,
    category TEXT NOT NULL,
    channel  TEXT NOT NULL,
    enabled  INTEGER NOT NULL,
    PRIMARY KEY (user_id, category, channel)
  ) STRICT;
  CREATE TABLE push_subscriptions (
    endpoint   TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at TEXT NOT NULL
  ) STRICT;
  CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);
  CREATE TABLE contacts (
    user_id    TEXT PRIMARY KEY NOT NULL,
    email      TEXT NULL,
    sms_number TEXT NULL,
    updated_at TEXT NOT NULL
  ) STRICT;
  CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL,
    notification_id TEXT NULL,
    channel         TEXT NOT NULL,
    target          TEXT NOT NULL,
    message         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    last_error      TEXT NULL,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
  ) STRICT;
  CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('queued', 'retrying');
  CREATE INDEX deliveries_user ON deliveries (user_id, id);
  CREATE INDEX deliveries_notification ON deliveries (notification_id);
  ${SQLITE_OUTBOX_SCHEMA}
  ${SQLITE_OUTBOX_RELAY_MIGRATION}
  ${SQLITE_PROCESSED_EVENTS_SCHEMA}
  `,
];

/** Opens (creating and migrating when needed) the SQLite notification store. */
export function openSqliteNotificationStore(options: SqliteNotificationStoreOptions): NotificationStore {
  const store = openSqliteEventStore({
    file: options.file,
    migrations: MIGRATIONS,
    label: 'notifications database',
  });
  const { db } = store;
  const notifications = sqliteTable(db, { table: 'notifications', fields: NOTIFICATION_FIELDS });
  const subscriptions = sqliteTable(db, {
    table: 'push_subscriptions',
    fields: PUSH_SUBSCRIPTION_FIELDS,
    key: 'endpoint',
  });
  const contacts = sqliteTable(db, { table: 'contacts', fields: CONTACT_FIELDS, key: 'userId' });
  const deliveries = sqliteTable(db, { table: 'deliveries', fields: DELIVERY_FIELDS });
  const inbox = notifications.pager('user_id = @userId AND (@unreadOnly = 0 OR read_at IS NULL)');
  const stmt = {
    countUnread: db
      .prepare<[string], number>('SELECT count(*) FROM notifications WHERE user_id = ? AND read_at IS NULL')
      .pluck(),
    markRead: db.prepare<[SqliteRow], SqliteRow>(
      `UPDATE notifications SET read_at = coalesce(read_at, @at) WHERE id = @id AND user_id = @userId RETURNING *`,
    ),
    markAllRead: db.prepare<[SqliteRow]>(
      'UPDATE notifications SET read_at = @at WHERE user_id = @userId AND read_at IS NULL',
    ),
    preferences: db.prepare<[string], SqliteRow>(
      'SELECT * FROM preferences WHERE user_id = ? ORDER BY category, channel',
    ),
    setPreference: db.prepare<[SqliteRow]>(
      `INSERT INTO preferences (user_id, category, channel, enabled) VALUES (@userId, @category, @channel, @enabled)
       ON CONFLICT (user_id, category, channel) DO UPDATE SET enabled = excluded.enabled`,
    ),
    upsertContactEmail: db.prepare<[SqliteRow]>(
      `INSERT INTO contacts (user_id, email, sms_number, updated_at) VALUES (@userId, @email, NULL, @at)
       ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, updated_at = excluded.updated_at`,
    ),
    upsertSmsNumber: db.prepare<[SqliteRow]>(
      `INSERT INTO contacts (user_id, email, sms_number, updated_at) VALUES (@userId, NULL, @smsNumber, @at)
       ON CONFLICT (user_id) DO UPDATE SET sms_number = excluded.sms_number, updated_at = excluded.updated_at`,
    ),
    upsertSubscription: db.prepare<[SqliteRow]>(
      `INSERT INTO push_subscriptions (endpoint, user_id, p256dh, auth, created_at)
       VALUES (@endpoint, @user_id, @p256dh, @auth, @created_at)
       ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, p256dh = excluded.p256dh,
         auth = excluded.auth, created_at = excluded.created_at`,
    ),
    removeSubscription: db.prepare<[string, string]>(
      'DELETE FROM push_subscriptions WHERE user_id = ? AND endpoint = ?',
    ),
    subscriptionsOf: db.prepare<[string], SqliteRow>(
      'SELECT * FROM push_subscriptions WHERE user_id = ? ORDER BY created_at, endpoint',
    ),
    purge: db.prepare<[string]>(
      "DELETE FROM deliveries WHERE status IN ('sent', 'failed') AND updated_at < ?",
    ),
    claim: db.prepare<[SqliteRow], SqliteRow>(
      `UPDATE deliveries SET lease_until = @leaseUntil
       WHERE id IN (
         SELECT id FROM deliveries
         WHERE status IN ('queued', 'retrying') AND next_attempt_at <= @now
           AND (lease_until IS NULL OR lease_until <= @now)
         ORDER BY next_attempt_at, id LIMIT @limit)
       RETURNING *`,
    ),
    finish: db.prepare<[SqliteRow]>(
      `UPDATE deliveries SET status = @status, attempts = @attempts, last_error = @lastError,
         next_attempt_at = @nextAttemptAt, lease_until = NULL, updated_at = @at
       WHERE id = @id`,
    ),
    // One statement per filter (each served by its index); both given, both apply.
    deliveriesOf: {
      user: db.prepare<[SqliteRow], SqliteRow>(
        'SELECT * FROM deliveries WHERE user_id = @userId ORDER BY id',
      ),
      notification: db.prepare<[SqliteRow], SqliteRow>(
        'SELECT * FROM deliveries WHERE notification_id = @notificationId ORDER BY id',
      ),
      both: db.prepare<[SqliteRow], SqliteRow>(
        'SELECT * FROM deliveries WHERE notification_id = @notificationId AND user_id = @userId ORDER BY id',
      ),
    },
    removePerson: ['notifications', 'preferences', 'push_subscriptions', 'contacts', 'deliveries'].map(
      (table) => db.prepare<[string]>(`DELETE FROM ${table} WHERE user_id = ?`),
    ),
  };

  const writeEffects = (effects: EventEffects) => {
    if (effects.notification) notifications.insert(effects.notification);
    for (const delivery of effects.deliveries) deliveries.insert(delivery);
    if (effects.contact) {
      const { userId, email, at } = effects.contact;
      stmt.upsertContactEmail.run({ userId, email, at: at.toISOString() });
    }
  };
  const writeEventTx = store.transaction((event: AivaEvent) => store.outbox.write(event));
  /**
   * Writes an event of this subgraph (a requested notification) to the outbox; the relay publishes it. Spread
   * in until the port declares `requestNotification` (an extra property written out would not typecheck yet).
   */
  const publishing = {
    async requestNotification(event: AivaEvent): Promise<void> {
      writeEventTx(event);
    },
  };
  const setPreferencesTx = store.transaction((list: PreferenceRecord[]) => {
    for (const p of list) stmt.setPreference.run({ ...p, enabled: p.enabled ? 1 : 0 });
  });

  return {
    kind: 'sqlite',

    async applyEvent(consumer, eventId, effects) {
      return store.once(consumer, eventId, () => writeEffects(effects)) !== 'duplicate';
    },

    async listNotifications(userId, page) {
      const result = inbox.page(
        { first: page.first, afterId: page.beforeId, order: 'desc' },
        { userId, unreadOnly: page.unreadOnly ? 1 : 0 },
      );
      return { notifications: result.items, hasNextPage: result.hasNextPage };
    },

    async countUnread(userId) {
      return stmt.countUnread.get(userId) ?? 0;
    },

    async findNotification(userId, id) {
      const found = notifications.findById(id);
      return found && found.userId === userId ? found : null;
    },

    async markRead(userId, id, at) {
      const row = stmt.markRead.get({ id, userId, at: at.toISOString() });
      return row ? notifications.fromRow(row) : null;
    },

    async markAllRead(userId, at) {
      return stmt.markAllRead.run({ userId, at: at.toISOString() }).changes;
    },

    async preferences(userId) {
      return stmt.preferences.all(userId).map((row) => ({
        userId,
        category: row.category as PreferenceRecord['category'],
        channel: row.channel as PreferenceRecord['channel'],
        enabled: row.enabled === 1,
      }));
    },

    async setPreferences(list) {
      setPreferencesTx(list);
    },

    async contact(userId) {
      return contacts.findById(userId);
    },

    async setSmsNumber(userId, smsNumber, at) {
      stmt.upsertSmsNumber.run({ userId, smsNumber, at: at.toISOString() });
    },

    async savePushSubscription(subscription) {
      stmt.upsertSubscription.run(subscriptions.toRow(subscription));
    },

    async removePushSubscription(userId, endpoint) {
      return stmt.removeSubscription.run(userId, endpoint).changes > 0;
    },

    async forgetPushEndpoint(endpoint) {
      subscriptions.deleteById(endpoint);
    },

    async pushSubscriptions(userId) {
      return stmt.subscriptionsOf.all(userId).map(subscriptions.fromRow);
    },

    async claimDueDeliveries(now, leaseUntil, limit) {
      // One UPDATE: the write lock makes a claim atomic across connections. SQLite reads a negative LIMIT as
      // "no limit" and refuses a fractional one, hence the whole number ≥ 0. RETURNING has no order: sorted here.
      return stmt.claim
        .all({ now: now.toISOString(), leaseUntil: leaseUntil.toISOString(), limit: pageLimit(limit) })
        .map(deliveries.fromRow)
        .sort((a, b) => a.nextAttemptAt.getTime() - b.nextAttemptAt.getTime() || (a.id < b.id ? -1 : 1));
    },

    async purgeDeliveries(before) {
      return stmt.purge.run(before.toISOString()).changes;
    },

    async finishDelivery(id, outcome, at) {
      stmt.finish.run({
        id,
        status: outcome.status,
        attempts: outcome.attempts,
        lastError: outcome.lastError,
        nextAttemptAt: outcome.nextAttemptAt.toISOString(),
        at: at.toISOString(),
      });
    },

    async deliveries({ userId, notificationId }): Promise<DeliveryRecord[]> {
      const { deliveriesOf } = stmt;
      const statement =
        userId !== undefined && notificationId !== undefined
          ? deliveriesOf.both
          : userId !== undefined
            ? deliveriesOf.user
            : notificationId !== undefined
              ? deliveriesOf.notification
              : null;
      return statement ? statement.all({ userId, notificationId }).map(deliveries.fromRow) : [];
    },

    async removePerson(consumer, eventId, userId) {
      const outcome = store.once(consumer, eventId, () => {
        for (const statement of stmt.removePerson) statement.run(userId);
      });
      return outcome !== 'duplicate';
    },

    ...publishing,
    ...store.relay,
    ping: store.ping,
    close: store.close,
  };
}
