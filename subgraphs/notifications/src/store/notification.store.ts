import type { AivaEvent, OutboxStore, RecordFields } from '@aiva/shared';

/** What a notification is about (the schema's NotificationCategory, lower case in storage). */
export const CATEGORIES = ['welcome', 'security', 'activity', 'product'] as const;
export type Category = (typeof CATEGORIES)[number];

/** Where a notification goes. `in_app` is the stored notification itself; the others are deliveries. */
export const CHANNELS = ['in_app', 'email', 'push', 'sms'] as const;
export type Channel = (typeof CHANNELS)[number];
export type DeliveryChannel = Exclude<Channel, 'in_app'>;

/** One in-app notification of one person. */
export interface NotificationRecord {
  id: string; // UUIDv7: newest first is id descending
  userId: string;
  category: Category;
  title: string;
  body: string;
  data: Record<string, unknown> | null;
  readAt: Date | null;
  createdAt: Date;
}

export interface NotificationPage {
  notifications: NotificationRecord[];
  hasNextPage: boolean;
}

/** A preference someone set; those never set are the defaults (see preferences.ts). */
export interface PreferenceRecord {
  userId: string;
  category: Category;
  channel: Channel;
  enabled: boolean;
}

/** A browser's Web Push subscription; the endpoint is unique (a browser belongs to one person at a time). */
export interface PushSubscriptionRecord {
  endpoint: string;
  userId: string;
  p256dh: string;
  auth: string;
  createdAt: Date;
}

/** Where mails and SMS of a person go: the address from auth's events, the number the person set. */
export interface ContactRecord {
  userId: string;
  email: string | null;
  smsNumber: string | null;
  updatedAt: Date;
}

export type DeliveryStatus = 'queued' | 'retrying' | 'sent' | 'failed';

/**
 * One message on one channel, kept as the delivery log: what to send (`message`: the template and its values,
 * single-use tokens still sealed), where, its state, attempts and last error.
 */
export interface DeliveryRecord {
  id: string;
  userId: string;
  notificationId: string | null;
  channel: DeliveryChannel;
  /** The address, push endpoint or phone number. */
  target: string;
  message: DeliveryMessage;
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
  /** When the next attempt is due (queued and retrying). */
  nextAttemptAt: Date;
  createdAt: Date;
  updatedAt: Date;
}

/** What a delivery sends: a template of the channel and its values (rendered at send time). */
export interface DeliveryMessage {
  template: string;
  values: Record<string, string>;
}

/** What one consumed event makes: an in-app notification and/or deliveries. */
export interface EventEffects {
  notification?: NotificationRecord;
  deliveries: DeliveryRecord[];
  /** The person's email address as the event tells it (kept for later mails). */
  contact?: { userId: string; email: string; at: Date };
}

/**
 * The persistence port of the notifications subgraph. Consumed events are applied once by event id: their
 * effects and the processed mark are written in one transaction. It has an outbox like every store (the relay
 * runs on it), though the subgraph publishes no event yet.
 */
export interface NotificationStore extends OutboxStore {
  readonly kind: 'sqlite' | 'mongo';
  /**
   * Writes the effects of `eventId` for `consumer` unless that consumer already processed it; false (nothing
   * written) for a duplicate.
   */
  applyEvent(consumer: string, eventId: string, effects: EventEffects): Promise<boolean>;
  /** Writes the event of a `sendNotification` request to the outbox; the relay publishes it. */
  requestNotification(event: AivaEvent<'aiva.notifications.notification.requested.v1'>): Promise<void>;
  /** Newest first; `beforeId` excludes that id and everything newer. */
  listNotifications(
    userId: string,
    page: { first: number; beforeId?: string; unreadOnly: boolean },
  ): Promise<NotificationPage>;
  countUnread(userId: string): Promise<number>;
  /** The person's notification by id, or null (someone else's is null too). */
  findNotification(userId: string, id: string): Promise<NotificationRecord | null>;
  /** Sets `readAt` when unread; null when the person has no such notification. */
  markRead(userId: string, id: string, at: Date): Promise<NotificationRecord | null>;
  /** Returns how many were unread. */
  markAllRead(userId: string, at: Date): Promise<number>;
  preferences(userId: string): Promise<PreferenceRecord[]>;
  setPreferences(preferences: PreferenceRecord[]): Promise<void>;
  contact(userId: string): Promise<ContactRecord | null>;
  setSmsNumber(userId: string, smsNumber: string | null, at: Date): Promise<void>;
  /** Adds or refreshes; a subscription of another person under the same endpoint moves to this one. */
  savePushSubscription(subscription: PushSubscriptionRecord): Promise<void>;
  removePushSubscription(userId: string, endpoint: string): Promise<boolean>;
  /** Removes a subscription the push service says is gone, whoever it belonged to. */
  forgetPushEndpoint(endpoint: string): Promise<void>;
  pushSubscriptions(userId: string): Promise<PushSubscriptionRecord[]>;
  /**
   * Takes up to `limit` deliveries that are due (queued or retrying, `nextAttemptAt` ≤ now) and not held by
   * another worker, holding them until `leaseUntil`: at most one worker sends a delivery at a time.
   */
  claimDueDeliveries(now: Date, leaseUntil: Date, limit: number): Promise<DeliveryRecord[]>;
  /** Records the outcome of an attempt and releases the hold. */
  finishDelivery(
    id: string,
    outcome: { status: DeliveryStatus; attempts: number; lastError: string | null; nextAttemptAt: Date },
    at: Date,
  ): Promise<void>;
  /** Removes sent and failed deliveries last changed before `before` (the log's retention); how many went. */
  purgeDeliveries(before: Date): Promise<number>;
  /** The delivery log of a notification or of a person, oldest first (tests, support). */
  deliveries(filter: { userId?: string; notificationId?: string }): Promise<DeliveryRecord[]>;
  /** Removes everything of the person (the account was deleted), once per event. */
  removePerson(consumer: string, eventId: string, userId: string): Promise<boolean>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** How each record is stored (both adapters read these). */
export const NOTIFICATION_FIELDS: RecordFields<NotificationRecord> = {
  id: 'string',
  userId: 'string',
  category: 'string',
  title: 'string',
  body: 'string',
  data: 'json',
  readAt: 'date?',
  createdAt: 'date',
};

export const PUSH_SUBSCRIPTION_FIELDS: RecordFields<PushSubscriptionRecord> = {
  endpoint: 'string',
  userId: 'string',
  p256dh: 'string',
  auth: 'string',
  createdAt: 'date',
};

export const CONTACT_FIELDS: RecordFields<ContactRecord> = {
  userId: 'string',
  email: 'value',
  smsNumber: 'value',
  updatedAt: 'date',
};

export const DELIVERY_FIELDS: RecordFields<DeliveryRecord> = {
  id: 'string',
  userId: 'string',
  notificationId: 'value',
  channel: 'string',
  target: 'string',
  message: 'json',
  status: 'string',
  attempts: 'number',
  lastError: 'value',
  nextAttemptAt: 'date',
  createdAt: 'date',
  updatedAt: 'date',
};
