import type { AivaEvent } from './event.js';

/**
 * The outbox side of a store: events written in the same local transaction as the state change they
 * describe, waiting to be published. The relay publishes them (the event id doubles as the NATS
 * `Nats-Msg-Id`, so a retried publish is deduplicated) and then marks them published.
 */
export interface OutboxStore {
  /** Oldest unpublished events first. */
  pendingEvents(limit: number): Promise<AivaEvent[]>;
  markPublished(ids: readonly string[]): Promise<void>;
}
