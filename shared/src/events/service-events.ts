import { type CommonEnv, embeddedEventsFile } from '../config.js';
import type { Logger } from '../log.js';
import type { EventBus } from './bus.js';
import { type CreateEventBusOptions, createEventBus } from './create-bus.js';
import { createEventMetrics, type EventMetrics } from './event-metrics.js';
import type { OutboxStore } from './outbox.js';
import { OutboxRelay, type OutboxRelayOptions } from './relay.js';

/** The event settings of a process's configuration, as `createServiceEvents` takes them. */
export interface EventOptions {
  /** NATS deadlines and the duplicate window of a stream the bus creates. */
  nats: NonNullable<CreateEventBusOptions['nats']>;
  /** The relay's quarantine threshold and lease length. */
  relay: Pick<OutboxRelayOptions, 'maxAttempts' | 'leaseMs'>;
}

/** The event settings of a service's configuration (`NATS_*_MS`, `OUTBOX_*`). */
export function eventOptionsOf(
  config: Pick<
    CommonEnv,
    | 'NATS_PUBLISH_TIMEOUT_MS'
    | 'NATS_CONNECT_TIMEOUT_MS'
    | 'NATS_DUPLICATE_WINDOW_MS'
    | 'OUTBOX_MAX_ATTEMPTS'
    | 'OUTBOX_RELAY_LEASE_MS'
  >,
): EventOptions {
  return {
    nats: {
      publishTimeoutMs: config.NATS_PUBLISH_TIMEOUT_MS,
      connectTimeoutMs: config.NATS_CONNECT_TIMEOUT_MS,
      duplicateWindowMs: config.NATS_DUPLICATE_WINDOW_MS,
    },
    relay: { maxAttempts: config.OUTBOX_MAX_ATTEMPTS, leaseMs: config.OUTBOX_RELAY_LEASE_MS },
  };
}

/**
 * Everything `createServiceEvents` reads from a service's configuration: NATS_URL, else the machine's SQLite event
 * log, and the NATS and relay settings.
 */
export function serviceEventsConfigOf(
  config: Parameters<typeof eventOptionsOf>[0] & Pick<CommonEnv, 'NATS_URL' | 'DATA_DIR' | 'EVENTS_DB_FILE'>,
): Pick<ServiceEventsOptions, 'natsUrl' | 'file'> & EventOptions {
  return {
    ...(config.NATS_URL ? { natsUrl: config.NATS_URL } : {}),
    file: embeddedEventsFile(config),
    ...eventOptionsOf(config),
  };
}

export interface ServiceEventsOptions extends Partial<EventOptions> {
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
  /**
   * The bus's state and the relay's outbox metrics; register them on the service's registry
   * (`metrics.register(server.metrics.registry, server.dependencies)`).
   */
  metrics: EventMetrics;
  /** For the server's `onClose`, in order: stop the relay, then close the bus when it was made here. */
  closers: Array<() => Promise<void>>;
}

/**
 * A service's event plumbing: its bus (given or made from `natsUrl`), the relay from its store's outbox and their
 * metrics. A NATS bus that cannot be reached yet does not stop the service: it connects in the background, and
 * the relay keeps the events in the outbox meanwhile.
 */
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
      ...(options.nats ? { nats: options.nats } : {}),
    }));
  const metrics = createEventMetrics({ bus, store: options.store, ...(logger ? { logger } : {}) });
  const relay = new OutboxRelay({
    ...options.relay,
    store: options.store,
    bus,
    observer: metrics.observer,
    ...(logger ? { logger } : {}),
  });
  return {
    bus,
    relay,
    metrics,
    closers: [() => relay.stop(), async () => metrics.close(), ...(ownsBus ? [() => bus.close()] : [])],
  };
}
