import { type AivaEvent, notFound, uuidv7 } from '@aiva/shared';
import { isEnabled } from './preferences.js';
import type {
  Category,
  DeliveryMessage,
  DeliveryRecord,
  EventEffects,
  NotificationPage,
  NotificationRecord,
  NotificationStore,
  PreferenceRecord,
  PushSubscriptionRecord,
} from './store/notification.store.js';

/** Mails of the security category, by the event that asks for them: the template and the link's path. */
export const SECURITY_MAILS = {
  'aiva.auth.password_reset.requested.v1': { template: 'password_reset', path: '/reset-password' },
  'aiva.auth.email_verification.requested.v1': { template: 'email_verification', path: '/verify-email' },
  'aiva.auth.email_change.requested.v1': { template: 'email_change', path: '/confirm-email-change' },
} as const;
export type SecurityMailEvent = keyof typeof SECURITY_MAILS;

/** What the app is told when a notification is stored (the live channel's payload, the GraphQL shape). */
export interface LiveNotification {
  id: string;
  category: string;
  title: string;
  body: string;
  data: Record<string, unknown> | null;
  readAt: string | null;
  createdAt: string;
}

export function toLive(record: NotificationRecord): LiveNotification {
  return {
    id: record.id,
    category: record.category.toUpperCase(),
    title: record.title,
    body: record.body,
    data: record.data,
    readAt: record.readAt?.toISOString() ?? null,
    createdAt: record.createdAt.toISOString(),
  };
}

export interface NotificationServiceOptions {
  store: NotificationStore;
  appName: string;
  /** Called after a notification was stored (the live channel pushes it). */
  onStored?: (notification: NotificationRecord) => void;
  /** Called after deliveries were queued (the dispatcher looks at once). */
  onQueued?: () => void;
  /** Called after a request was written to the outbox (the relay publishes at once). */
  onRequested?: () => void;
  now?: () => Date;
}

/** The rules of notifications: what each event makes, who sees what. Knows nothing of GraphQL or transports. */
export class NotificationService {
  private readonly store: NotificationStore;
  private readonly now: () => Date;

  constructor(private readonly options: NotificationServiceOptions) {
    this.store = options.store;
    this.now = options.now ?? (() => new Date());
  }

  /** Sign-up: a welcome in the app and by mail (as the person's preferences allow), and their address kept. */
  async welcome(consumer: string, event: AivaEvent<'aiva.auth.user.registered.v1'>): Promise<boolean> {
    const { id: userId, email } = event.data;
    const at = this.now();
    const name = this.options.appName;
    return this.apply(consumer, event.id, {
      userId,
      category: 'welcome',
      content: {
        title: `Welcome to ${name}`,
        body: `Your ${name} account is ready.`,
        data: null,
      },
      email: { to: email, message: { template: 'welcome', values: { email } } },
      contact: { userId, email, at },
    });
  }

  /**
   * A security mail (reset, verification, email change): always sent, to the address in the event, with the
   * single-use token kept sealed in the delivery log until the mail is rendered.
   */
  async securityMail<T extends SecurityMailEvent>(consumer: string, event: AivaEvent<T>): Promise<boolean> {
    const { userId, email, token, expiresAt } = event.data as {
      userId: string;
      email: string;
      token: string;
      expiresAt: string;
    };
    const { template } = SECURITY_MAILS[event.type as SecurityMailEvent];
    const values: Record<string, string> = { email, token, expiresAt };
    const previous = (event.data as { previousEmail?: string }).previousEmail;
    if (previous) values.previousEmail = previous;
    const applied = await this.store.applyEvent(consumer, event.id, {
      deliveries: [this.delivery(userId, null, 'email', email, { template, values })],
    });
    if (applied) this.options.onQueued?.();
    return applied;
  }

  /**
   * The account's address changed: a security notification in the app, a warning mail to the previous address
   * (whoever changed it, the owner of that address learns of it), and later mails go to the new one.
   */
  async emailChanged(
    consumer: string,
    event: AivaEvent<'aiva.auth.user.email_changed.v1'>,
  ): Promise<boolean> {
    const { id: userId, email, previousEmail, changedAt } = event.data;
    const body = `The email address of your ${this.options.appName} account was changed to ${email}. If you did not do this, reset your password now.`;
    return this.apply(consumer, event.id, {
      userId,
      category: 'security',
      content: { title: 'Your email address was changed', body, data: { email } },
      email: {
        to: previousEmail,
        message: { template: 'generic', values: { title: 'Your email address was changed', body } },
      },
      contact: { userId, email, at: new Date(changedAt) },
    });
  }

  /**
   * An admin's or a service's request (`sendNotification`): recorded as an event in this store's outbox, so it is
   * durable before the caller is answered and delivered through the bus like every event (once per id).
   */
  async request(
    input: {
      userId: string;
      category: 'activity' | 'product';
      title: string;
      body: string;
      data: Record<string, unknown> | null;
    },
    requestedBy: string,
  ): Promise<string> {
    const event: AivaEvent<'aiva.notifications.notification.requested.v1'> = {
      id: uuidv7(),
      type: 'aiva.notifications.notification.requested.v1',
      occurredAt: this.now().toISOString(),
      source: 'notifications',
      data: { ...input, requestedBy },
    };
    await this.store.requestNotification(event);
    this.options.onRequested?.();
    return event.id;
  }

  /** A requested notification (see `request`): stored and sent as the person's preferences allow. */
  async requested(
    consumer: string,
    event: AivaEvent<'aiva.notifications.notification.requested.v1'>,
  ): Promise<boolean> {
    const { userId, category, title, body, data } = event.data;
    return this.apply(consumer, event.id, { userId, category, content: { title, body, data } });
  }

  /** The person was deleted: their notifications, preferences, subscriptions, contact and deliveries go. */
  async personDeleted(consumer: string, event: AivaEvent<'aiva.users.user.deleted.v1'>): Promise<boolean> {
    return this.store.removePerson(consumer, event.id, event.data.id);
  }

  /**
   * Stores a notification of `category` for the person and queues its deliveries on every channel their
   * preferences allow (email to their known address, push to each subscription, SMS to their number), once per
   * event id.
   */
  async apply(
    consumer: string,
    eventId: string,
    request: {
      userId: string;
      category: Category;
      content: { title: string; body: string; data: Record<string, unknown> | null };
      email?: { to: string; message: DeliveryMessage };
      contact?: EventEffects['contact'];
    },
  ): Promise<boolean> {
    const { userId, category, content } = request;
    const [preferences, contact, subscriptions] = await Promise.all([
      this.store.preferences(userId),
      this.store.contact(userId),
      this.store.pushSubscriptions(userId),
    ]);
    const at = this.now();
    const notification: NotificationRecord | undefined = isEnabled(preferences, category, 'in_app')
      ? { id: uuidv7(), userId, category, ...content, readAt: null, createdAt: at }
      : undefined;
    const notificationId = notification?.id ?? null;
    const deliveries = this.channelDeliveries({
      userId,
      category,
      content,
      notificationId,
      preferences,
      email:
        // Without an address yet (the sign-up's event not consumed yet), the mail goes to the address known when
        // it is sent (PERSON_ADDRESS).
        request.email ?? { to: contact?.email ?? PERSON_ADDRESS, message: genericMail(content) },
      smsNumber: contact?.smsNumber ?? null,
      subscriptions,
    });
    const applied = await this.store.applyEvent(consumer, eventId, {
      ...(notification ? { notification } : {}),
      deliveries,
      ...(request.contact ? { contact: request.contact } : {}),
    });
    if (applied && notification) this.options.onStored?.(notification);
    if (applied && deliveries.length > 0) this.options.onQueued?.();
    return applied;
  }

  private channelDeliveries(input: {
    userId: string;
    category: Category;
    content: { title: string; body: string; data: Record<string, unknown> | null };
    notificationId: string | null;
    preferences: PreferenceRecord[];
    email: { to: string; message: DeliveryMessage } | undefined;
    smsNumber: string | null;
    subscriptions: PushSubscriptionRecord[];
  }): DeliveryRecord[] {
    const { userId, category, notificationId, preferences, content } = input;
    const deliveries: DeliveryRecord[] = [];
    if (input.email && isEnabled(preferences, category, 'email')) {
      deliveries.push(this.delivery(userId, notificationId, 'email', input.email.to, input.email.message));
    }
    if (isEnabled(preferences, category, 'push')) {
      for (const subscription of input.subscriptions) {
        deliveries.push(
          this.delivery(userId, notificationId, 'push', subscription.endpoint, {
            template: 'notification',
            values: {
              title: content.title,
              body: content.body,
              ...(notificationId ? { id: notificationId } : {}),
            },
          }),
        );
      }
    }
    if (input.smsNumber && isEnabled(preferences, category, 'sms')) {
      deliveries.push(
        this.delivery(userId, notificationId, 'sms', input.smsNumber, {
          template: 'text',
          values: { body: `${content.title}: ${content.body}` },
        }),
      );
    }
    return deliveries;
  }

  private delivery(
    userId: string,
    notificationId: string | null,
    channel: DeliveryRecord['channel'],
    target: string,
    message: DeliveryMessage,
  ): DeliveryRecord {
    const at = this.now();
    return {
      id: uuidv7(),
      userId,
      notificationId,
      channel,
      target,
      message,
      status: 'queued',
      attempts: 0,
      lastError: null,
      nextAttemptAt: at,
      createdAt: at,
      updatedAt: at,
    };
  }

  list(
    userId: string,
    page: { first: number; beforeId?: string; unreadOnly: boolean },
  ): Promise<NotificationPage> {
    return this.store.listNotifications(userId, page);
  }

  /** The person's notification, or null (someone else's is null too). */
  find(userId: string, id: string): Promise<NotificationRecord | null> {
    return this.store.findNotification(userId, id);
  }

  countUnread(userId: string): Promise<number> {
    return this.store.countUnread(userId);
  }

  async markRead(userId: string, id: string): Promise<NotificationRecord> {
    const record = await this.store.markRead(userId, id, this.now());
    // Someone else's notification is as unknown as one that does not exist.
    if (!record) throw notFound('No such notification', { field: 'id' });
    return record;
  }

  markAllRead(userId: string): Promise<number> {
    return this.store.markAllRead(userId, this.now());
  }
}

/**
 * The target of an email delivery queued before the person's address was known: it is looked up when the mail is
 * sent, and the delivery retried (transiently) until it is.
 */
export const PERSON_ADDRESS = '';

/** The mail of a notification that has no template of its own. */
function genericMail(content: { title: string; body: string }): DeliveryMessage {
  return { template: 'generic', values: { title: content.title, body: content.body } };
}
