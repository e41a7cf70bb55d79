import type { AivaEvent } from './event.js';

/** An outbox row the relay gave up on: kept, with why and after how many attempts, until replayed or discarded. */
export interface QuarantinedEvent {
  event: AivaEvent;
  /** Failed publish attempts (1 for an event that failed validation: that is permanent at once). */
  attempts: number;
  /** The last failure's message (event ids, types and zod paths only: never event data). */
  error: string;
  quarantinedAt: Date;
}

/** What `recordFailure` did with the row. */
export interface OutboxFailure {
  /** Failed attempts counted so far (0 when the row is unknown or already published). */
  attempts: number;
  /** The row is quarantined now: the relay moves on to the next one. */
  quarantined: boolean;
}

/** Sizes of an outbox, for metrics. */
export interface OutboxStats {
  /** Rows waiting to be published (quarantined ones excluded). */
  pending: number;
  quarantined: number;
}

/**
 * The outbox side of a store: events written in the same local transaction as the state change they
 * describe, waiting to be published. The relay publishes them (the event id doubles as the NATS
 * `Nats-Msg-Id`, so a retried publish is deduplicated) and then marks them published.
 *
 * A row that cannot be published (it fails validation, or fails `maxAttempts` times while the bus is up) is
 * quarantined: it stays in the outbox with its error and attempt count, the relay skips it, and an operator
 * puts it back in line with `replayQuarantined` (or drops it with `discardQuarantined`).
 *
 * Several instances of a service share one store; only the holder of the outbox's relay lease publishes, so
 * they never publish the same rows at the same time and the order holds. A lease not renewed (its holder died)
 * expires and another instance takes over.
 */
export interface OutboxStore {
  /** Oldest publishable events first (quarantined rows are skipped). */
  pendingEvents(limit: number): Promise<AivaEvent[]>;
  markPublished(ids: readonly string[]): Promise<void>;
  /**
   * Counts a failed publish of one pending row and keeps its error; quarantines the row when the failure is
   * `permanent` or the attempts reach `maxAttempts`. An unknown or published id changes nothing.
   */
  recordFailure(
    id: string,
    failure: { error: string; permanent: boolean; maxAttempts: number },
  ): Promise<OutboxFailure>;
  /** Quarantined rows, oldest first (default limit 100). */
  quarantinedEvents(limit?: number): Promise<QuarantinedEvent[]>;
  /**
   * Puts quarantined rows (these ids, or all of them) back in line at their original place, with a fresh attempt
   * budget. Returns how many went back.
   */
  replayQuarantined(ids?: readonly string[]): Promise<number>;
  /** Deletes these quarantined rows for good (their events are never published). Returns how many. */
  discardQuarantined(ids: readonly string[]): Promise<number>;
  outboxStats(): Promise<OutboxStats>;
  /**
   * Takes the outbox's relay lease for `owner` for `leaseMs`, or renews it when `owner` holds it. False when
   * another owner holds a lease that has not expired. Atomic across processes sharing the store.
   */
  acquireRelayLease(owner: string, leaseMs: number): Promise<boolean>;
  /** Gives the lease up when `owner` holds it, so another instance takes over at once. */
  releaseRelayLease(owner: string): Promise<void>;
}

/** The relay-facing methods of an outbox adapter, to spread into a store that implements `OutboxStore`. */
export function outboxMethods(outbox: OutboxStore): OutboxStore {
  return {
    pendingEvents: (limit) => outbox.pendingEvents(limit),
    markPublished: (ids) => outbox.markPublished(ids),
    recordFailure: (id, failure) => outbox.recordFailure(id, failure),
    quarantinedEvents: (limit) => outbox.quarantinedEvents(limit),
    replayQuarantined: (ids) => outbox.replayQuarantined(ids),
    discardQuarantined: (ids) => outbox.discardQuarantined(ids),
    outboxStats: () => outbox.outboxStats(),
    acquireRelayLease: (owner, leaseMs) => outbox.acquireRelayLease(owner, leaseMs),
    releaseRelayLease: (owner) => outbox.releaseRelayLease(owner),
  };
}
