import { type EventBus, type Logger, onceConsumers, type Subscription } from '@aiva/shared';
import type { MediaService } from './media.service.js';

/**
 * The events the media subgraph consumes, each by a durable consumer of its own (`media.*`), applied once by
 * event id. Every instance subscribes with the same names, so the instances share the work: an uploaded event
 * is taken by one of them, which queues the item; any instance's processing worker may then claim it.
 */
export const CONSUMERS = {
  processing: 'media.processing',
  accountRemoval: 'media.account-removal',
} as const;

/** Subscribes the consumers; returns their subscriptions (stopped on close). */
export async function subscribeConsumers(
  bus: EventBus,
  service: MediaService,
  logger: Logger,
): Promise<Subscription[]> {
  const on = onceConsumers(bus, logger);
  return Promise.all([
    on(CONSUMERS.processing, 'aiva.media.media.uploaded.v1', (c, e) => service.uploaded(c, e)),
    on(CONSUMERS.accountRemoval, 'aiva.users.user.deleted.v1', (c, e) => service.personDeleted(c, e)),
  ]);
}
