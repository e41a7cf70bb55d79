import type { EventBus, Logger, Subscription } from '@aiva/shared';
import type { NotificationService } from './notification.service.js';

/**
 * The events the notifications subgraph consumes, each by a durable consumer of its own (`notifications.*`),
 * applied once by event id (the effects and the processed mark in one transaction). It publishes the requests of
 * `sendNotification` and consumes them itself, so a request is durable before it is answered.
 */
export const CONSUMERS = {
  welcome: 'notifications.welcome',
  passwordReset: 'notifications.password-reset',
  emailVerification: 'notifications.email-verification',
  emailChange: 'notifications.email-change',
  contactSync: 'notifications.contact-sync',
  accountRemoval: 'notifications.account-removal',
  requested: 'notifications.requested',
} as const;

/** Subscribes the consumers; returns their subscriptions (stopped on close). */
export async function subscribeConsumers(
  bus: EventBus,
  service: NotificationService,
  logger: Logger,
): Promise<Subscription[]> {
  const applied = (consumer: string, eventId: string) => (done: boolean) => {
    if (!done) logger.debug({ consumer, eventId }, 'event already processed');
  };
  return Promise.all([
    bus.subscribe(CONSUMERS.welcome, 'aiva.auth.user.registered.v1', (event) =>
      service.welcome(CONSUMERS.welcome, event).then(applied(CONSUMERS.welcome, event.id)),
    ),
    bus.subscribe(CONSUMERS.passwordReset, 'aiva.auth.password_reset.requested.v1', (event) =>
      service.securityMail(CONSUMERS.passwordReset, event).then(applied(CONSUMERS.passwordReset, event.id)),
    ),
    bus.subscribe(CONSUMERS.emailVerification, 'aiva.auth.email_verification.requested.v1', (event) =>
      service
        .securityMail(CONSUMERS.emailVerification, event)
        .then(applied(CONSUMERS.emailVerification, event.id)),
    ),
    bus.subscribe(CONSUMERS.emailChange, 'aiva.auth.email_change.requested.v1', (event) =>
      service.securityMail(CONSUMERS.emailChange, event).then(applied(CONSUMERS.emailChange, event.id)),
    ),
    bus.subscribe(CONSUMERS.contactSync, 'aiva.auth.user.email_changed.v1', (event) =>
      service.emailChanged(CONSUMERS.contactSync, event).then(applied(CONSUMERS.contactSync, event.id)),
    ),
    bus.subscribe(CONSUMERS.requested, 'aiva.notifications.notification.requested.v1', (event) =>
      service.requested(CONSUMERS.requested, event).then(applied(CONSUMERS.requested, event.id)),
    ),
    bus.subscribe(CONSUMERS.accountRemoval, 'aiva.users.user.deleted.v1', (event) =>
      service
        .personDeleted(CONSUMERS.accountRemoval, event)
        .then(applied(CONSUMERS.accountRemoval, event.id)),
    ),
  ]);
}
