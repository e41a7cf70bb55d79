// Idempotent consumers. JetStream deduplicates a republished event only within its duplicate window (2 minutes),
// and every bus delivers at least once; so a consumer whose effect must happen once records the ids of the
// events it processed in its own store, in the same transaction as the effect: a redelivery, however late,
// finds the id and does nothing. The SQLite and MongoDB kits implement it (`createSqliteProcessedEvents`,
// `createMongoProcessedEvents`); this file holds what they share.

/** The outcome of `runOnce`: the effect ran now (with its result), or the event was processed before. */
export type Once<T> = { duplicate: false; result: T } | { duplicate: true };

/**
 * Processed ids are kept this long by default: longer than the event stream keeps events (7 days), so a
 * redelivery or a republish from an outbox always finds its id.
 */
export const PROCESSED_EVENTS_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

/** Old ids are pruned at most this often, piggybacking on `runOnce` (default one hour). */
export const PROCESSED_EVENTS_PRUNE_INTERVAL_MS = 60 * 60 * 1000;

export interface ProcessedEventsOptions {
  /** How long a processed id is kept (default `PROCESSED_EVENTS_RETENTION_MS`). */
  retentionMs?: number;
  /** The clock (tests). */
  now?: () => Date;
}
