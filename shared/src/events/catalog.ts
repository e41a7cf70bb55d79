import { z } from 'zod';
import { SEALED_PATTERN } from './sealing.js';

/**
 * A sealed field (`sealed:v1:<kid>:<nonce>:<ciphertext+tag>`, see sealing.ts): single-use secrets travel only so,
 * never in plaintext. The envelope checks the shape; a consumer holding the keys calls `openSealed(value, keys)`.
 */
export const sealed = () => z.string().regex(SEALED_PATTERN, 'must be a sealed value (sealed:v1:...)');

/**
 * The event catalog: one zod schema per event type. Producers validate on publish, consumers on receipt.
 * Types follow `aiva.<producer>.<entity>.<verb>.v<N>`; a breaking change to `data` gets a new version.
 */
const userProfile = z.object({
  id: z.string().uuid(),
  email: z.string().email(),
  username: z.string(),
  firstName: z.string(),
  lastName: z.string(),
  displayName: z.string().nullable(),
});

const mediaKind = z.enum(['IMAGE', 'VIDEO', 'AUDIO', 'DOCUMENT']);

export const eventCatalog = {
  'aiva.users.user.created.v1': userProfile.extend({ createdAt: z.string().datetime() }),
  'aiva.users.user.updated.v1': userProfile.extend({
    updatedAt: z.string().datetime(),
    changedFields: z.array(z.string()).min(1),
  }),
  'aiva.users.user.deleted.v1': z.object({ id: z.string().uuid(), deletedAt: z.string().datetime() }),
  'aiva.auth.user.registered.v1': z.object({
    id: z.string().uuid(),
    email: z.string().email(),
    registeredAt: z.string().datetime(),
  }),
  /**
   * Carry the single-use token for the mail the notifications subgraph sends, sealed (only a holder of the
   * event sealing keys opens it); auth stores only its hash. Events are internal: never log `data` of these.
   */
  'aiva.auth.password_reset.requested.v1': z.object({
    userId: z.string().uuid(),
    email: z.string().email(),
    token: sealed(),
    expiresAt: z.string().datetime(),
  }),
  'aiva.auth.email_verification.requested.v1': z.object({
    userId: z.string().uuid(),
    email: z.string().email(),
    token: sealed(),
    expiresAt: z.string().datetime(),
  }),
  /**
   * A signed-in person asked to use `email` (the new address, where the mail with the sealed token goes) instead
   * of `previousEmail` (which the notifications subgraph may warn). Nothing changes until the token is confirmed.
   */
  'aiva.auth.email_change.requested.v1': z.object({
    userId: z.string().uuid(),
    email: z.string().email(),
    previousEmail: z.string().email(),
    token: sealed(),
    expiresAt: z.string().datetime(),
  }),
  /** The account's email changed (the new address was verified); users follows with the profile's copy. */
  'aiva.auth.user.email_changed.v1': z.object({
    id: z.string().uuid(),
    email: z.string().email(),
    previousEmail: z.string().email(),
    changedAt: z.string().datetime(),
  }),
  /** A file finished uploading (its bytes are stored and typed); the media subgraph's processing consumes it. */
  'aiva.media.media.uploaded.v1': z.object({
    id: z.string().uuid(),
    ownerId: z.string().uuid(),
    kind: mediaKind,
    mimeType: z.string(),
    size: z.number().int().nonnegative(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    uploadedAt: z.string().datetime(),
  }),
  /**
   * Processing ended: `READY` with what was found, or `FAILED` with the reason. `textKey` names the stored
   * plain text extracted from a document (read through the media service's storage), when there is any.
   */
  'aiva.media.media.processed.v1': z.object({
    id: z.string().uuid(),
    ownerId: z.string().uuid(),
    kind: mediaKind,
    mimeType: z.string(),
    status: z.enum(['READY', 'FAILED']),
    failureReason: z.string().nullable(),
    pageCount: z.number().int().nullable(),
    durationSeconds: z.number().nullable(),
    textKey: z.string().nullable(),
    textLength: z.number().int().nullable(),
    /** The item's (sanitised) file name. */
    filename: z.string().optional(),
    /**
     * A signed URL of the extracted text on the media service (`/media/files/<id>/text.txt?t=…`), valid as long as
     * the event stream keeps events: another service fetches its path from a media instance, no storage access.
     */
    textUrl: z.string().url().nullable().optional(),
    processedAt: z.string().datetime(),
  }),
  /** A media item was deleted (by its owner, an admin, or with its owner's account). */
  'aiva.media.media.deleted.v1': z.object({
    id: z.string().uuid(),
    ownerId: z.string().uuid(),
    deletedAt: z.string().datetime(),
  }),
  /**
   * An admin or a service asked for a notification to one person; the notifications subgraph stores it in the app
   * and sends it on the channels the person's preferences allow for its category.
   */
  'aiva.notifications.notification.requested.v1': z.object({
    userId: z.string().uuid(),
    category: z.enum(['activity', 'product']),
    title: z.string().min(1).max(200),
    body: z.string().min(1).max(5000),
    data: z.record(z.string(), z.unknown()).nullable(),
    requestedBy: z.string().min(1),
  }),
  /** Information only: the orchestrator started routing to an instance (it registered, or recovered). */
  'aiva.orchestrator.instance.up.v1': z.object({
    service: z.string(),
    instanceId: z.string(),
    url: z.string(),
    at: z.string().datetime(),
  }),
  /** Information only: the orchestrator stopped routing to an instance, and why. */
  'aiva.orchestrator.instance.down.v1': z.object({
    service: z.string(),
    instanceId: z.string(),
    url: z.string(),
    reason: z.string(),
    at: z.string().datetime(),
  }),
} as const;

export type EventCatalog = typeof eventCatalog;
export type EventType = keyof EventCatalog;
export const EVENT_TYPES = Object.keys(eventCatalog) as EventType[];

export function isEventType(type: string): type is EventType {
  return Object.hasOwn(eventCatalog, type);
}

/** Who publishes an event type and who consumes it, for the event catalog in the README (`renderEventCatalog`). */
export interface EventTypeInfo {
  /** The service that publishes it (through its outbox). */
  producer: string;
  /** What it says, in one sentence. */
  description: string;
  /** Consumer names (`<service>.<purpose>`) subscribed to it. */
  consumers: readonly string[];
}

/**
 * Producers and consumers of every catalog type, next to the schemas so a new type cannot miss its entry (the
 * Record type fails to compile). Keep the consumer names equal to the ones the services subscribe with.
 */
export const eventDirectory: Record<EventType, EventTypeInfo> = {
  'aiva.users.user.created.v1': {
    producer: 'users',
    description: 'A profile was created (at sign-up).',
    consumers: [],
  },
  'aiva.users.user.updated.v1': {
    producer: 'users',
    description: 'Profile fields changed; `changedFields` names them.',
    consumers: [],
  },
  'aiva.users.user.deleted.v1': {
    producer: 'users',
    description: 'A profile was removed; auth removes the account and its sessions.',
    consumers: [
      'auth.account-removal',
      'notifications.account-removal',
      'media.account-removal',
      'ai.account-removal',
    ],
  },
  'aiva.auth.user.registered.v1': {
    producer: 'auth',
    description: 'An account was registered.',
    consumers: ['notifications.welcome'],
  },
  'aiva.auth.password_reset.requested.v1': {
    producer: 'auth',
    description: 'A password reset was asked for; carries the sealed single-use token for the mail.',
    consumers: ['notifications.password-reset'],
  },
  'aiva.auth.email_verification.requested.v1': {
    producer: 'auth',
    description: 'An address is to be verified; carries the sealed single-use token for the mail.',
    consumers: ['notifications.email-verification'],
  },
  'aiva.auth.email_change.requested.v1': {
    producer: 'auth',
    description:
      'A signed-in person asked to use a new address; the sealed token goes to `email`, `previousEmail` may be warned.',
    consumers: ['notifications.email-change'],
  },
  'aiva.auth.user.email_changed.v1': {
    producer: 'auth',
    description: "The account's email changed (the new address was verified); the profile's copy follows.",
    consumers: ['users.email-sync', 'notifications.contact-sync'],
  },
  'aiva.media.media.uploaded.v1': {
    producer: 'media',
    description:
      'A file finished uploading; its type was sniffed from its bytes and it is queued for processing.',
    consumers: ['media.processing'],
  },
  'aiva.media.media.processed.v1': {
    producer: 'media',
    description:
      'Processing ended (READY or FAILED); for a document, `textUrl` is a signed URL of its extracted text.',
    consumers: ['ai.media-indexing'],
  },
  'aiva.media.media.deleted.v1': {
    producer: 'media',
    description: "A media item and its stored files were removed; its text leaves the owner's knowledge.",
    consumers: ['ai.media-removal'],
  },
  'aiva.notifications.notification.requested.v1': {
    producer: 'notifications',
    description:
      'An admin or a service asked for a notification to a person (`sendNotification`); delivered in the app and on the channels their preferences allow.',
    consumers: ['notifications.requested'],
  },
  'aiva.orchestrator.instance.up.v1': {
    producer: 'orchestrator',
    description: 'Information only: the orchestrator started routing to an instance.',
    consumers: [],
  },
  'aiva.orchestrator.instance.down.v1': {
    producer: 'orchestrator',
    description: 'Information only: the orchestrator stopped routing to an instance, and why.',
    consumers: [],
  },
};
