import { commonEnvSchema, env, mongoEnvSchema, sealingEnvSchema, tokenEnvSchema } from '@aiva/shared';
import { z } from 'zod';

export const notificationsEnvSchema = commonEnvSchema
  .extend(tokenEnvSchema.shape)
  .extend(mongoEnvSchema.shape)
  .extend(sealingEnvSchema.shape)
  .extend({
    NOTIFICATIONS_PORT: env.port(3005),
    /** SQLite file of the embedded store; default `<DATA_DIR>/notifications.sqlite`. */
    NOTIFICATIONS_DB_FILE: z.string().optional(),
    /** When set, notifications live in MongoDB instead of SQLite. */
    MONGODB_URL: env.url(['mongodb', 'mongodb+srv']).optional(),
    /** Where the links in mails point: `<APP_URL>/reset-password?token=…` and the like. */
    APP_URL: env.url(['http', 'https']).default('http://localhost:3000'),
    /** The product's name in mails and pushes. */
    APP_NAME: z.string().min(1).default('AIVA'),
    /**
     * SMTP server mails go through, e.g. `smtp://user:pass@mail.example.com:587` (STARTTLS when offered) or
     * `smtps://…:465`. Unset: each mail is written as an `.eml` file under MAIL_DIR (and the path logged).
     */
    SMTP_URL: env.url(['smtp', 'smtps']).optional(),
    /** The sender of mails. */
    MAIL_FROM: z.string().min(3).default('AIVA <no-reply@aiva.local>'),
    /** Without SMTP_URL: where mails are written; default `<DATA_DIR>/mail`. */
    MAIL_DIR: z.string().optional(),
    /** Twilio's REST API for SMS: all three, or none (then SMS are appended to SMS_LOG_FILE). */
    TWILIO_ACCOUNT_SID: z.string().optional(),
    TWILIO_AUTH_TOKEN: z.string().optional(),
    /** The sending number (E.164) or messaging service SID. */
    TWILIO_FROM: z.string().optional(),
    /** Twilio's API base URL (tests point it at a local server speaking Twilio's wire format). */
    TWILIO_BASE_URL: env.url(['http', 'https']).optional(),
    /** Without Twilio: one JSON line per SMS; default `<DATA_DIR>/sms.log`. */
    SMS_LOG_FILE: z.string().optional(),
    /** Web Push (VAPID) keys, generated on first start and kept (mode 0600); default `<DATA_DIR>/vapid-keys.json`. */
    VAPID_KEYS_FILE: z.string().optional(),
    /** The contact push services may reach the sender at (`mailto:` or `https:`). */
    VAPID_SUBJECT: z.string().default('mailto:admin@aiva.local'),
    /** Attempts of one delivery before it is marked failed (transient errors are retried with backoff). */
    DELIVERY_MAX_ATTEMPTS: env.positiveInt(8),
    /** First retry delay of a delivery, doubling per attempt up to an hour, in ms. */
    DELIVERY_RETRY_BASE_MS: env.positiveInt(5_000),
    /** Deliveries sent at once by one instance. */
    DELIVERY_CONCURRENCY: env.positiveInt(4),
    /** How long sent and failed deliveries stay in the delivery log, in days. */
    DELIVERY_RETENTION_DAYS: env.positiveInt(30),
    /** Deadline of one send (SMTP, push service, Twilio), in ms. */
    DELIVERY_TIMEOUT_MS: env.positiveInt(15_000),
  })
  .superRefine((config, ctx) => {
    const twilio = [config.TWILIO_ACCOUNT_SID, config.TWILIO_AUTH_TOKEN, config.TWILIO_FROM];
    if (twilio.some(Boolean) && !twilio.every(Boolean)) {
      ctx.addIssue({
        code: 'custom',
        path: ['TWILIO_ACCOUNT_SID'],
        message: 'set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM together, or none of them',
      });
    }
  });
export type NotificationsConfig = z.infer<typeof notificationsEnvSchema>;
