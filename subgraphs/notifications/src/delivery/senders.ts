import { openSealed, type SealingKeys } from '@aiva/shared';
import {
  type EmailChannel,
  PermanentDeliveryError,
  type PushChannel,
  type SmsChannel,
  TransientDeliveryError,
} from '../channels/index.js';
import type { DeliveryRecord, NotificationStore } from '../store/notification.store.js';
import { type EmailCategory, isEmailCategory, renderEmail } from '../templates/index.js';

export interface SendersOptions {
  email: EmailChannel;
  push: PushChannel;
  sms: SmsChannel;
  store: NotificationStore;
  /** Opens the single-use tokens, sealed in the events and in the delivery log. */
  sealingKeys: SealingKeys;
  appName: string;
  /** Where the links in mails point (APP_URL). */
  appUrl: string;
}

/** The path of the page each security mail links to, with the token as `?token=`. */
const LINKS: Partial<Record<string, { path: string; variable: string }>> = {
  password_reset: { path: '/reset-password', variable: 'resetUrl' },
  email_verification: { path: '/verify-email', variable: 'verifyUrl' },
  email_change: { path: '/confirm-email-change', variable: 'confirmUrl' },
};

/** A delivery whose content cannot be made (unknown template, bad values): retrying will not help. */
function unusable(delivery: DeliveryRecord, why: string): PermanentDeliveryError {
  return new PermanentDeliveryError(delivery.channel, `delivery ${delivery.id} cannot be rendered: ${why}`);
}

/**
 * The mail's variables: the stored values, with a sealed token opened into the link of its page
 * (`<APP_URL>/reset-password?token=…`). The token exists in plaintext only here, for the mail being sent.
 */
export function emailVariables(
  delivery: DeliveryRecord,
  options: Pick<SendersOptions, 'sealingKeys' | 'appUrl'>,
): Record<string, string> {
  const { template, values } = delivery.message;
  const link = LINKS[template];
  if (!link) return { ...values };
  const { token, email: _email, previousEmail: _previous, ...rest } = values;
  if (!token) throw unusable(delivery, 'no token');
  const url = new URL(link.path, options.appUrl);
  url.searchParams.set('token', openSealed(token, options.sealingKeys));
  return { ...rest, [link.variable]: url.toString() };
}

/** `send(delivery)` for the dispatcher: renders the message of the delivery's channel and sends it. */
export function createSenders(options: SendersOptions): (delivery: DeliveryRecord) => Promise<void> {
  const context = { appName: options.appName, appUrl: options.appUrl };
  return async (delivery) => {
    switch (delivery.channel) {
      case 'email': {
        const template = delivery.message.template;
        if (!isEmailCategory(template)) throw unusable(delivery, `unknown template ${template}`);
        let rendered: ReturnType<typeof renderEmail>;
        try {
          rendered = renderEmail(
            template as EmailCategory,
            emailVariables(delivery, options) as never,
            context,
          );
        } catch (error) {
          if (error instanceof PermanentDeliveryError) throw error;
          throw unusable(delivery, (error as Error).message);
        }
        const to = delivery.target || (await options.store.contact(delivery.userId))?.email;
        if (!to) {
          throw new TransientDeliveryError(
            'email',
            `delivery ${delivery.id}: no address known for the person yet`,
          );
        }
        await options.email.send({
          to,
          ...rendered,
          headers: { 'X-AIVA-Delivery': delivery.id },
          // A delivery sent again (its sender was killed between SMTP's acceptance and recording it) is the
          // same message: one Message-ID per delivery.
          idempotencyKey: `aiva-delivery-${delivery.id}`,
        });
        return;
      }
      case 'push': {
        const subscription = (await options.store.pushSubscriptions(delivery.userId)).find(
          (s) => s.endpoint === delivery.target,
        );
        if (!subscription) throw unusable(delivery, 'the subscription was removed');
        const { title, body, id } = delivery.message.values;
        await options.push.send(
          { endpoint: subscription.endpoint, keys: { p256dh: subscription.p256dh, auth: subscription.auth } },
          { title, body, ...(id ? { notificationId: id } : {}) },
        );
        return;
      }
      case 'sms':
        await options.sms.send({ to: delivery.target, body: delivery.message.values.body ?? '' });
        return;
    }
  };
}
