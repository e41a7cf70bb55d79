import type { EventType } from './catalog.js';
import type { AivaEvent } from './event.js';

/** What a handler may do with a delivery. Throwing is the same as asking for a retry. */
export type EventHandler<T extends EventType> = (event: AivaEvent<T>) => Promise<void>;

export interface SubscribeOptions {
  /** Deliveries before the message goes to the dead-letter store (default 5). */
  maxDeliver?: number;
  /** Delay before redelivery n (ms); the last value repeats (default [100, 500, 2000, 5000]). */
  backoffMs?: number[];
}

export interface DeadLetter {
  consumer: string;
  event: AivaEvent;
  error: string;
  deliveries: number;
  failedAt: string;
}

/** Whether a bus can take events now: `down` while it cannot be reached (NATS disconnected or not yet connected). */
export type BusState = 'up' | 'down';

export interface Subscription {
  /** Stops delivery to this handler; the durable consumer and its position survive. */
  stop(): Promise<void>;
}

/**
 * The event bus port. Delivery is at-least-once to every durable consumer; a consumer name identifies one
 * logical consumer (`<service>.<purpose>`) whose position survives restarts. Handlers must be idempotent by
 * `event.id`. After `maxDeliver` failed deliveries the event goes to the dead-letter store with the error.
 */
export interface EventBus {
  readonly kind: 'nats' | 'sqlite' | 'memory';
  /** Validates against the catalog and publishes; resolves once the bus has durably accepted the event.
   *  Publishing the same `id` twice delivers it once (deduplication). */
  publish(event: AivaEvent): Promise<void>;
  subscribe<T extends EventType>(
    consumer: string,
    type: T,
    handler: EventHandler<T>,
    options?: SubscribeOptions,
  ): Promise<Subscription>;
  /** Dead letters recorded for a consumer (newest last). */
  deadLetters(consumer: string): Promise<DeadLetter[]>;
  /** Throws when the bus cannot be reached (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * Buses that can lose their server (NATS) report their state: `listener` is called at once with the current
   * state, then once per change. Returns a function that stops the reports. Buses without it are always up.
   */
  watchState?(listener: (state: BusState) => void): () => void;
}

export const DEFAULT_SUBSCRIBE_OPTIONS: Required<SubscribeOptions> = {
  maxDeliver: 5,
  backoffMs: [100, 500, 2000, 5000],
};
