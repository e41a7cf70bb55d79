import { type EventBus, type Logger, onceConsumers, type Subscription } from '@aiva/shared';
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
  const on = onceConsumers(bus, logger);
  return Promise.all([
    on(CONSUMERS.welcome, 'aiva.auth.user.registered.v1', (c, e) => service.welcome(c, e)),
    on(CONSUMERS.passwordReset, 'aiva.auth.password_reset.requested.v1', (c, e) =>
      service.securityMail(c, e),
    ),
    on(CONSUMERS.emailVerification, 'aiva.auth.email_verification.requested.v1', (c, e) =>
      service.securityMail(c, e),
    ),
    on(CONSUMERS.emailChange, 'aiva.auth.email_change.requested.v1', (c, e) => service.securityMail(c, e)),
    on(CONSUMERS.contactSync, 'aiva.auth.user.email_changed.v1', (c, e) => service.emailChanged(c, e)),
    on(CONSUMERS.requested, 'aiva.notifications.notification.requested.v1', (c, e) =>
      service.requested(c, e),
    ),
    on(CONSUMERS.accountRemoval, 'aiva.users.user.deleted.v1', (c, e) => service.personDeleted(c, e)),
  ]);
}
