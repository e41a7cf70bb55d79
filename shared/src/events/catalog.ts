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
