import { type AivaEvent, type EventBus, type Logger, onceConsumers, type Subscription } from '@aiva/shared';
import type { KnowledgeService } from './knowledge.service.js';
import type { AiStore } from './store/ai.store.js';

/** The events the AI subgraph consumes, each by a durable consumer of its own (`ai.*`), applied once by id. */
export const CONSUMERS = {
  accountRemoval: 'ai.account-removal',
  mediaRemoval: 'ai.media-removal',
} as const;

/** A person's account went: their conversations, knowledge (vectors too) and usage go. */
async function personDeleted(
  store: AiStore,
  knowledge: KnowledgeService,
  consumer: string,
  event: AivaEvent<'aiva.users.user.deleted.v1'>,
): Promise<boolean> {
  // The vectors first (idempotent): when this fails the event comes again and nothing is left behind.
  await knowledge.removeOwner(event.data.id);
  return store.removeOwner(consumer, event.id, event.data.id);
}

/** Subscribes the consumers; returns their subscriptions (stopped on close). */
export async function subscribeConsumers(
  bus: EventBus,
  store: AiStore,
  knowledge: KnowledgeService,
  logger: Logger,
): Promise<Subscription[]> {
  const on = onceConsumers(bus, logger);
  return Promise.all([
    on(CONSUMERS.accountRemoval, 'aiva.users.user.deleted.v1', (c, e) =>
      personDeleted(store, knowledge, c, e),
    ),
    on(CONSUMERS.mediaRemoval, 'aiva.media.media.deleted.v1', (c, e) =>
      store.once(c, e.id, async () => {
        await knowledge.remove(e.data.ownerId, 'media', e.data.id);
      }),
    ),
  ]);
}
