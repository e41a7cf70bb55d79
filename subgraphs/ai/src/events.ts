import { type AivaEvent, type EventBus, type Logger, onceConsumers, type Subscription } from '@aiva/shared';
import type { KnowledgeService } from './knowledge.service.js';
import type { AiStore } from './store/ai.store.js';

/** The events the AI subgraph consumes, each by a durable consumer of its own (`ai.*`), applied once by id. */
export const CONSUMERS = {
  accountRemoval: 'ai.account-removal',
  mediaIndexing: 'ai.media-indexing',
  mediaRemoval: 'ai.media-removal',
} as const;

/** Fetches a processed document's text (see MediaClient.readText). */
export type MediaTextSource = (textUrl: string) => Promise<string>;

/** A document processed by media joins its owner's knowledge (indexing it again replaces its chunks). */
async function mediaProcessed(
  store: AiStore,
  knowledge: KnowledgeService,
  mediaText: MediaTextSource,
  consumer: string,
  event: AivaEvent<'aiva.media.media.processed.v1'>,
): Promise<boolean> {
  const { data } = event;
  if (data.status !== 'READY' || data.kind !== 'DOCUMENT' || !data.textUrl) return false;
  const textUrl = data.textUrl;
  return store.once(consumer, event.id, async () => {
    const text = await mediaText(textUrl);
    await knowledge.index(data.ownerId, 'media', data.id, data.filename ?? 'Document', text);
  });
}

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
  mediaText: MediaTextSource,
  logger: Logger,
): Promise<Subscription[]> {
  const on = onceConsumers(bus, logger);
  return Promise.all([
    on(CONSUMERS.mediaIndexing, 'aiva.media.media.processed.v1', (c, e) =>
      mediaProcessed(store, knowledge, mediaText, c, e),
    ),
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
