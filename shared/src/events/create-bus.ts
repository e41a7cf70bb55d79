import type { Logger } from '../log.js';
import type { EventBus, Subscription } from './bus.js';
import { createMemoryBus, type MemoryBus } from './memory.js';
import { createNatsBus, type NatsBusOptions } from './nats.js';
import { createSqliteBus } from './sqlite.js';

export interface CreateEventBusOptions {
  /** NATS server URL(s) (`NATS_URL`); without it the SQLite bus (`file`) or the in-process bus is used. */
  natsUrl?: string;
  /**
   * Without `natsUrl`: the SQLite event log shared by the services' processes on this machine. Without it
   * either, the process-wide in-memory bus is used (services composed in one process only).
   */
  file?: string;
  /** The calling service, e.g. `users`. */
  source: string;
  logger?: Logger;
  /** NATS deadlines and stream settings (`eventOptionsOf`), for a NATS bus. */
  nats?: Pick<NatsBusOptions, 'publishTimeoutMs' | 'connectTimeoutMs' | 'duplicateWindowMs'>;
}

let shared: MemoryBus | null = null;

/**
 * The one in-memory bus of this process. In the all-in-one process every service gets a view of it, so an
 * event published by one service reaches the subscribers of the others.
 */
export function sharedMemoryBus(options: { logger?: Logger } = {}): MemoryBus {
  shared ??= createMemoryBus(options);
  return shared;
}

/**
 * A view of a shared bus whose `close()` only stops the subscriptions made through it: one service shutting
 * down must not close the bus under the others.
 */
function scopedView(bus: EventBus): EventBus {
  const mine = new Set<Subscription>();
  let closed = false;
  const assertOpen = () => {
    if (closed) throw new Error('The event bus is closed');
  };
  return {
    kind: bus.kind,
    async publish(event) {
      assertOpen();
      await bus.publish(event);
    },
    async subscribe(consumer, type, handler, options) {
      assertOpen();
      const subscription = await bus.subscribe(consumer, type, handler, options);
      mine.add(subscription);
      return {
        async stop() {
          mine.delete(subscription);
          await subscription.stop();
        },
      };
    },
    deadLetters: (consumer) => bus.deadLetters(consumer),
    async ping() {
      assertOpen();
      await bus.ping();
    },
    async close() {
      closed = true;
      const subscriptions = [...mine];
      mine.clear();
      await Promise.allSettled(subscriptions.map((s) => s.stop()));
    },
  };
}

/**
 * The event bus for a service: NATS JetStream when `natsUrl` is given, else the SQLite bus over `file`
 * (between the processes of this machine), else the shared in-memory bus (within this process).
 */
export async function createEventBus(options: CreateEventBusOptions): Promise<EventBus> {
  if (options.natsUrl) {
    return createNatsBus({
      ...options.nats,
      url: options.natsUrl,
      source: options.source,
      ...(options.logger ? { logger: options.logger } : {}),
    });
  }
  if (options.file) {
    options.logger?.info(
      { file: options.file },
      'NATS_URL is not set: events go through a SQLite file (between processes on this machine)',
    );
    return createSqliteBus({ file: options.file, source: options.source, logger: options.logger });
  }
  options.logger?.warn('NATS_URL is not set: using the in-process event bus (events are not durable)');
  return scopedView(sharedMemoryBus({ logger: options.logger }));
}
