import type { Logger } from '../log.js';
import { sleepUnlessAborted } from '../sleep.js';
import {
  type AdminDeadLetter,
  type AdministrableBus,
  byConsumerAndType,
  type ConsumerStatus,
  DeadLetterNotFoundError,
  deadLetterSeq,
  type EventBusAdmin,
} from './admin/admin.js';
import type { DeadLetter, EventBus, EventHandler, SubscribeOptions, Subscription } from './bus.js';
import type { EventType } from './catalog.js';
import {
  assertSubscribable,
  backoffFor,
  errorMessage,
  logDeadLetter,
  logRetry,
  resolveSubscribeOptions,
  validateEvent,
} from './delivery.js';
import type { AivaEvent } from './event.js';

// ---------------------------------------------------------------------------------------------------------------
// The in-process bus
// ---------------------------------------------------------------------------------------------------------------

/** The memory bus has one extra method for tests and shutdown: wait until nothing is being delivered. */
export interface MemoryBus extends EventBus, AdministrableBus {
  readonly kind: 'memory';
  /** Resolves once every queue with an active subscriber is empty and no delivery (or backoff) is in flight. */
  drain(): Promise<void>;
}

export interface MemoryBusOptions {
  logger?: Logger;
  /** How many published ids are remembered for deduplication (JetStream's duplicate window; default 10,000). */
  dedupeWindow?: number;
  /** Dead letters kept per consumer, oldest dropped first (default 1,000). */
  maxDeadLetters?: number;
}

/** A queued event: kept serialised so every consumer gets its own copy, as it would over the wire. */
interface QueuedEvent {
  id: string;
  payload: string;
  /** Failed deliveries so far; survives a stop/subscribe like JetStream's delivery count. */
  deliveries: number;
  /** Set on a replay: the id of the dead letter it replays (removed once this is done with). */
  replayOf?: string;
}

interface ActiveHandler {
  handler: EventHandler<EventType>;
  options: Required<SubscribeOptions>;
  stopped: boolean;
  /** The delivery this handler is running right now, so stop() can wait for it. */
  inFlight: Promise<void> | null;
}

/** One durable consumer position: a (consumer name, event type) pair, like one JetStream durable. */
interface Durable {
  consumer: string;
  type: EventType;
  queue: QueuedEvent[];
  handlers: ActiveHandler[];
  /** Round-robin cursor over the handlers of the same consumer name (competing subscribers). */
  next: number;
  /** The running delivery loop, if any. */
  worker: Promise<void> | null;
  /** When an event was last taken or settled (ms), 0 when never. */
  lastDelivered: number;
}

/**
 * An in-process event bus with the same contract as the NATS adapter: catalog validation on publish and
 * receipt, deduplication by event id, durable per-consumer queues that keep events while the consumer is
 * stopped, at-least-once delivery with backoff, dead letters after `maxDeliver` failures, and strictly
 * sequential in-order delivery per (consumer, type) — a failing event holds back later ones until it succeeds
 * or is dead-lettered (JetStream with `max_ack_pending: 1` behaves the same).
 *
 * A queue is created by the first `subscribe` of a consumer name; events published before that are not
 * delivered to it (JetStream's `DeliverPolicy.New`).
 */
export function createMemoryBus(options: MemoryBusOptions = {}): MemoryBus {
  const logger = options.logger;
  const dedupeWindow = options.dedupeWindow ?? 10_000;
  const maxDeadLetters = options.maxDeadLetters ?? 1_000;
  const durables = new Map<string, Durable>();
  /** Insertion-ordered, so the oldest id is evicted first. */
  const publishedIds = new Set<string>();
  const deadLetterStore = new Map<string, AdminDeadLetter[]>();
  let deadLetterCount = 0;
  let publishedCount = 0;
  let closed = false;
  const closing = new AbortController();

  const durableKey = (consumer: string, type: string) => `${consumer}\u0000${type}`;

  function assertOpen(): void {
    if (closed) throw new Error('The event bus is closed');
  }

  function rememberId(id: string): boolean {
    if (publishedIds.has(id)) return false;
    publishedIds.add(id);
    if (publishedIds.size > dedupeWindow) {
      const oldest = publishedIds.values().next().value;
      if (oldest !== undefined) publishedIds.delete(oldest);
    }
    return true;
  }

  function recordDeadLetter(letter: DeadLetter): void {
    const list = deadLetterStore.get(letter.consumer) ?? [];
    list.push({ ...letter, id: String(++deadLetterCount), type: letter.event.type });
    if (list.length > maxDeadLetters) list.splice(0, list.length - maxDeadLetters);
    deadLetterStore.set(letter.consumer, list);
    logDeadLetter(logger, letter);
  }

  /** The next active handler of a durable (round robin), or undefined when nobody is subscribed. */
  function pickHandler(durable: Durable): ActiveHandler | undefined {
    durable.handlers = durable.handlers.filter((h) => !h.stopped);
    if (durable.handlers.length === 0) return undefined;
    const handler = durable.handlers[durable.next % durable.handlers.length];
    durable.next++;
    return handler;
  }

  /** Parses the head event for delivery; an invalid one is dead-lettered at once (retrying cannot fix it). */
  function parseForDelivery(durable: Durable, item: QueuedEvent): AivaEvent | null {
    let raw: unknown;
    try {
      raw = JSON.parse(item.payload);
      return validateEvent(raw);
    } catch (error) {
      recordDeadLetter({
        consumer: durable.consumer,
        event: (raw ?? { id: item.id, type: durable.type }) as AivaEvent,
        error: errorMessage(error),
        deliveries: item.deliveries + 1,
        failedAt: new Date().toISOString(),
      });
      return null;
    }
  }

  /** One delivery attempt of the head event. Returns true when the event is done with (acked or dead). */
  async function deliverHead(durable: Durable, item: QueuedEvent, active: ActiveHandler): Promise<boolean> {
    const event = parseForDelivery(durable, item);
    if (!event) return true;
    item.deliveries++;
    durable.lastDelivered = Date.now();
    // new Promise(...) also turns a synchronous throw from the handler into a failed delivery.
    const attempt = new Promise<void>((resolve) => resolve(active.handler(event)));
    active.inFlight = attempt.then(
      () => undefined,
      () => undefined,
    );
    try {
      await attempt;
      return true;
    } catch (error) {
      const { maxDeliver, backoffMs } = active.options;
      if (item.deliveries >= maxDeliver) {
        recordDeadLetter({
          consumer: durable.consumer,
          event,
          error: errorMessage(error),
          deliveries: item.deliveries,
          failedAt: new Date().toISOString(),
        });
        return true;
      }
      logRetry(logger, { consumer: durable.consumer, event, delivery: item.deliveries, error });
      await sleepUnlessAborted(backoffFor(backoffMs, item.deliveries), closing.signal);
      return false;
    } finally {
      active.inFlight = null;
    }
  }

  /** Delivers queued events one at a time, in order, while someone is subscribed. */
  async function runWorker(durable: Durable): Promise<void> {
    for (;;) {
      const item = durable.queue[0];
      const active = item ? pickHandler(durable) : undefined;
      if (!item || !active || closed) return;
      const done = await deliverHead(durable, item, active);
      if (!done) continue;
      durable.queue.shift();
      durable.lastDelivered = Date.now();
      // A replayed dead letter is done with: delivered, or dead-lettered again under a new id.
      if (item.replayOf) removeDeadLetter(item.replayOf);
    }
  }

  /** Starts the delivery loop of a durable unless it is already running. Never blocks the caller. */
  function kick(durable: Durable): void {
    if (durable.worker) return;
    durable.worker = (async () => {
      // Let the publisher's call stack unwind first: handlers never run inside publish().
      await Promise.resolve();
      try {
        await runWorker(durable);
      } finally {
        durable.worker = null;
      }
      // Something may have been queued between the loop's last check and this point.
      if (durable.queue.length > 0 && durable.handlers.some((h) => !h.stopped) && !closed) kick(durable);
    })();
  }

  async function publish(event: AivaEvent): Promise<void> {
    assertOpen();
    const valid = validateEvent(event);
    if (!rememberId(valid.id)) return; // duplicate: accepted, delivered once
    publishedCount++;
    const payload = JSON.stringify(valid);
    for (const durable of durables.values()) {
      if (durable.type !== valid.type) continue;
      durable.queue.push({ id: valid.id, payload, deliveries: 0 });
      kick(durable);
    }
  }

  async function subscribe<T extends EventType>(
    consumer: string,
    type: T,
    handler: EventHandler<T>,
    subscribeOptions?: SubscribeOptions,
  ): Promise<Subscription> {
    assertOpen();
    assertSubscribable(consumer, type);
    const key = durableKey(consumer, type);
    let durable = durables.get(key);
    if (!durable) {
      durable = { consumer, type, queue: [], handlers: [], next: 0, worker: null, lastDelivered: 0 };
      durables.set(key, durable);
    }
    const active: ActiveHandler = {
      handler: handler as unknown as EventHandler<EventType>,
      options: resolveSubscribeOptions(subscribeOptions),
      stopped: false,
      inFlight: null,
    };
    durable.handlers.push(active);
    kick(durable);
    return {
      async stop() {
        active.stopped = true;
        // Like unsubscribing from JetStream: a delivery in progress finishes, the position is kept.
        await active.inFlight;
      },
    };
  }

  /** Removes a dead letter by id; false when there is none. */
  function removeDeadLetter(id: string): boolean {
    for (const [consumer, list] of deadLetterStore) {
      const index = list.findIndex((letter) => letter.id === id);
      if (index < 0) continue;
      list.splice(index, 1);
      if (list.length === 0) deadLetterStore.delete(consumer);
      return true;
    }
    return false;
  }

  function findDeadLetter(id: string): AdminDeadLetter {
    deadLetterSeq(id);
    for (const list of deadLetterStore.values()) {
      const letter = list.find((l) => l.id === id);
      if (letter) return letter;
    }
    throw new DeadLetterNotFoundError(id);
  }

  /** The admin side over this bus's own state (the same process: there is no other way in). */
  const admin: EventBusAdmin = {
    kind: 'memory',
    async streams() {
      return [
        {
          name: 'memory',
          subjects: ['aiva.>'],
          messages: publishedIds.size,
          bytes: null,
          firstSeq: publishedCount > 0 ? publishedCount - publishedIds.size + 1 : 0,
          lastSeq: publishedCount,
          consumers: durables.size,
        },
      ];
    },
    async consumers() {
      const rows: ConsumerStatus[] = [...durables.values()].map((durable) => {
        const head = durable.queue[0];
        const ackPending = head && head.deliveries > 0 ? 1 : 0;
        return {
          consumer: durable.consumer,
          type: durable.type,
          durable: `${durable.consumer} <- ${durable.type}`,
          pending: durable.queue.length - ackPending,
          ackPending,
          redelivered: head && head.deliveries > 1 ? 1 : 0,
          deadLetters: (deadLetterStore.get(durable.consumer) ?? []).filter((l) => l.type === durable.type)
            .length,
          lastDelivered: durable.lastDelivered ? new Date(durable.lastDelivered).toISOString() : null,
        };
      });
      return rows.sort(byConsumerAndType);
    },
    async deadLetters(consumer) {
      const lists =
        consumer === undefined ? [...deadLetterStore.values()] : [deadLetterStore.get(consumer) ?? []];
      return lists.flat().sort((a, b) => Number(a.id) - Number(b.id));
    },
    async replay(id) {
      assertOpen();
      const letter = findDeadLetter(id);
      const event = validateEvent(letter.event);
      const result = { id, consumer: letter.consumer, type: event.type, eventId: event.id };
      const durable = durables.get(durableKey(letter.consumer, event.type));
      if (!durable) throw new Error(`Consumer ${letter.consumer} has no position for ${event.type}`);
      // Replayed already and not delivered yet: once is enough.
      if (durable.queue.some((item) => item.replayOf === id)) return result;
      durable.queue.push({ id: event.id, payload: JSON.stringify(event), deliveries: 0, replayOf: id });
      kick(durable);
      return result;
    },
    async discard(id) {
      deadLetterSeq(id);
      if (!removeDeadLetter(id)) throw new DeadLetterNotFoundError(id);
    },
  };

  async function drain(): Promise<void> {
    for (;;) {
      const running = [...durables.values()]
        .map((d) => d.worker)
        .filter((w): w is Promise<void> => w !== null);
      if (running.length === 0) return;
      await Promise.allSettled(running);
    }
  }

  return {
    kind: 'memory',
    publish,
    subscribe,
    drain,
    admin: () => admin,
    async deadLetters(consumer) {
      return (deadLetterStore.get(consumer) ?? []).map(({ id: _id, type: _type, ...letter }) => letter);
    },
    async ping() {
      assertOpen();
    },
    async close() {
      if (closed) return;
      for (const durable of durables.values()) for (const h of durable.handlers) h.stopped = true;
      closing.abort();
      await drain();
      closed = true;
    },
  };
}
