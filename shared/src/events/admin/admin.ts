import type { DeadLetter, EventBus } from '../bus.js';

// The operator's side of the event bus: what the streams hold, how far behind each consumer is, which events a
// consumer gave up on, and putting one of those back in front of that consumer. Kept apart from the EventBus
// port: services publish and subscribe; only `pnpm events` and the contract tests look at the bus this way.

/** A log of events as the adapter keeps it (NATS: a JetStream stream; SQLite: a table of the file). */
export interface StreamStatus {
  name: string;
  /** What it holds, e.g. `aiva.>` or `dead letters`. */
  subjects: string[];
  messages: number;
  /** Stored size in bytes, when the adapter knows it. */
  bytes: number | null;
  firstSeq: number;
  lastSeq: number;
  /** Durable consumers reading it. */
  consumers: number;
}

/** One durable consumer position: a consumer name (`<service>.<purpose>`) and one event type. */
export interface ConsumerStatus {
  consumer: string;
  type: string;
  /** The adapter's name for the durable (a JetStream durable name, or `consumer <- type`). */
  durable: string;
  /** Events of its type not delivered yet: the lag. */
  pending: number;
  /**
   * Delivered (or being retried, or handed back by a stopping subscriber) and not acknowledged yet. The backlog
   * of the consumer is `pending + ackPending`.
   */
  ackPending: number;
  /** Of those, delivered more than once. */
  redelivered: number;
  /** Dead letters kept for this consumer and type. */
  deadLetters: number;
  /** When it last took or settled an event (ISO), null when never. */
  lastDelivered: string | null;
}

/** A dead letter as the admin sees it: the bus's dead letter with a stable id to replay or discard it by. */
export interface AdminDeadLetter extends DeadLetter {
  /** Stable while the dead letter is kept (the sequence number of its store). */
  id: string;
  type: string;
}

/** What `replay` did. */
export interface ReplayResult {
  id: string;
  consumer: string;
  type: string;
  eventId: string;
}

/**
 * The admin port, implemented by every bus adapter (`busAdminOf`). Replay delivers the dead letter's event
 * again to its consumer only (other consumers of the type do not see it again), after what that consumer has
 * queued; the dead letter goes once the replayed event is delivered, or is replaced by a new one when it fails
 * `maxDeliver` times again. Replaying the same dead letter twice before it is delivered delivers it once.
 */
export interface EventBusAdmin {
  readonly kind: EventBus['kind'];
  streams(): Promise<StreamStatus[]>;
  /** Every durable, sorted by consumer and type. */
  consumers(): Promise<ConsumerStatus[]>;
  /** Dead letters of one consumer, or of all, oldest first. */
  deadLetters(consumer?: string): Promise<AdminDeadLetter[]>;
  /** Throws DeadLetterNotFoundError for an unknown id, EventValidationError for an event that cannot be valid. */
  replay(id: string): Promise<ReplayResult>;
  /** Deletes a dead letter for good; throws DeadLetterNotFoundError for an unknown id. */
  discard(id: string): Promise<void>;
}

/** No dead letter with this id (never was, discarded, pruned, or delivered after a replay). */
export class DeadLetterNotFoundError extends Error {
  override readonly name = 'DeadLetterNotFoundError';
  constructor(readonly id: string) {
    super(`No dead letter with id ${id}`);
  }
}

/** Headers (NATS) naming the consumer a replayed event is for and the dead letter it replays. */
export const REPLAY_FOR_HEADER = 'Aiva-Replay-For';
export const REPLAY_OF_HEADER = 'Aiva-Replay-Of';

/** Parses a dead-letter id: a positive integer (the sequence number of the adapter's dead-letter store). */
export function deadLetterSeq(id: string): number {
  const seq = /^[1-9][0-9]{0,15}$/.test(id) ? Number(id) : Number.NaN;
  if (!Number.isSafeInteger(seq)) throw new DeadLetterNotFoundError(id);
  return seq;
}

/** Replays every dead letter of a consumer (oldest first); returns what was replayed. */
export async function replayAll(admin: EventBusAdmin, consumer: string): Promise<ReplayResult[]> {
  const letters = await admin.deadLetters(consumer);
  const replayed: ReplayResult[] = [];
  for (const letter of letters) replayed.push(await admin.replay(letter.id));
  return replayed;
}

/** A bus adapter that offers the admin side over its own connection. */
export interface AdministrableBus {
  admin(): EventBusAdmin;
}

/** The admin side of a bus, or null for a bus without one (a service's scoped view of the shared memory bus). */
export function busAdminOf(bus: EventBus): EventBusAdmin | null {
  const candidate = bus as Partial<AdministrableBus>;
  return typeof candidate.admin === 'function' ? candidate.admin() : null;
}

/** Sorts consumer rows by consumer name, then type. */
export function byConsumerAndType(a: ConsumerStatus, b: ConsumerStatus): number {
  return a.consumer.localeCompare(b.consumer) || a.type.localeCompare(b.type);
}
