import { isIP } from 'node:net';
import { z } from 'zod';
import { CATEGORIES, CHANNELS } from './store/notification.store.js';

/** Input rules of the notifications subgraph, applied at the resolver edge. */
export const notificationId = z.uuid('must be a notification id');
export const pageSize = z.number().int().min(1, 'must be at least 1').max(100, 'must be at most 100');

const upper = <T extends readonly string[]>(values: T) =>
  z
    .enum(values.map((v) => v.toUpperCase()) as [string, ...string[]])
    .transform((v) => v.toLowerCase() as T[number]);

export const preferencesInput = z
  .array(z.object({ category: upper(CATEGORIES), channel: upper(CHANNELS), enabled: z.boolean() }))
  .max(CATEGORIES.length * CHANNELS.length, 'lists each category and channel at most once');

/**
 * Whether a push endpoint's host is a name or a public address: the service POSTs to it, so an endpoint on
 * localhost, a private, link-local or unique-local address literal would let a client aim it inside the network.
 */
export function isPublicEndpointHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.local')) return false;
  const family = isIP(host);
  if (family === 4) {
    const [a = 0, b = 0] = host.split('.').map(Number);
    return !(
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 100 && b >= 64 && b <= 127) ||
      a >= 224
    );
  }
  if (family === 6)
    return !(
      host === '::1' ||
      host === '::' ||
      /^f[cd]/.test(host) ||
      /^fe[89ab]/.test(host) ||
      host.startsWith('::ffff:')
    );
  return true;
}

/** A Web Push subscription: an https endpoint and the browser's P-256 key and auth secret (base64url). */
export const pushSubscriptionInput = z.object({
  endpoint: z
    .url({ protocol: /^https$/ })
    .max(2048, 'must be at most 2048 characters')
    .refine((url) => isPublicEndpointHost(new URL(url).hostname), 'must be a push service on a public host'),
  keys: z.object({
    p256dh: z.string().regex(/^[A-Za-z0-9_-]{80,100}={0,2}$/, 'must be a base64url P-256 public key'),
    auth: z.string().regex(/^[A-Za-z0-9_-]{16,32}={0,2}$/, 'must be a base64url auth secret'),
  }),
});

/** An SMS number in E.164 (`+` and up to 15 digits), or null to stop SMS. */
export const smsNumber = z
  .string()
  .trim()
  .regex(/^\+[1-9][0-9]{6,14}$/, 'must be a phone number in E.164 form, e.g. +14155550123')
  .nullable();

/** What `sendNotification` takes: ACTIVITY or PRODUCT (WELCOME and SECURITY are the system's own). */
export const sendNotificationInput = z.object({
  userId: z.uuid('must be a user id'),
  category: z
    .enum(['ACTIVITY', 'PRODUCT'], 'must be ACTIVITY or PRODUCT')
    .transform((v) => v.toLowerCase() as 'activity' | 'product'),
  title: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
  body: z.string().trim().min(1, 'must not be empty').max(5000, 'must be at most 5000 characters'),
  data: z
    .record(z.string(), z.unknown())
    .nullish()
    .transform((v) => v ?? null)
    .refine((v) => v === null || JSON.stringify(v).length <= 4096, 'must be at most 4 KB of JSON'),
});
