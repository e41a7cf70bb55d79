import type { Logger } from '../log.js';
import type { EventBus } from './bus.js';
import { createEventBus } from './create-bus.js';
import type { OutboxStore } from './outbox.js';
import { OutboxRelay } from './relay.js';

export interface ServiceEventsOptions {
  /** The store whose outbox the relay moves to the bus. */
  store: OutboxStore;
  /** An existing bus (tests, the all-in-one process): used, never closed. Otherwise one is made (`createEventBus`). */
  bus?: EventBus;
  /** The calling service, e.g. `users`. */
  source: string;
  /** NATS server URL(s) (`NATS_URL`) for a bus made here. */
  natsUrl?: string;
  /** Without `natsUrl`: the SQLite event log shared by the services on this machine (`embeddedEventsFile`). */
  file?: string;
  logger?: Logger;
}

export interface ServiceEvents {
  bus: EventBus;
  /** Not started yet: start it once the service is wired up. */
  relay: OutboxRelay;
  /** For the server's `onClose`, in order: stop the relay, then close the bus when it was made here. */
  closers: Array<() => Promise<void>>;
}

/** A service's event plumbing: its bus (given or made from `natsUrl`) and the relay from its store's outbox. */
export async function createServiceEvents(options: ServiceEventsOptions): Promise<ServiceEvents> {
  const { logger } = options;
  const ownsBus = !options.bus;
  const bus =
    options.bus ??
    (await createEventBus({
      source: options.source,
      logger,
      ...(options.natsUrl ? { natsUrl: options.natsUrl } : {}),
      ...(options.file ? { file: options.file } : {}),
    }));
  const relay = new OutboxRelay({ store: options.store, bus, logger });
  return {
    bus,
    relay,
    closers: [() => relay.stop(), ...(ownsBus ? [() => bus.close()] : [])],
  };
}
