import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { DependencyMonitor } from '../server/dependencies.js';
import type { BusState, EventBus } from './bus.js';
import { errorMessage } from './delivery.js';
import type { OutboxStats, OutboxStore } from './outbox.js';
import type { OutboxRelayObserver } from './relay.js';

/** The gauge of soft dependencies (0/1), labelled `dependency`; the event bus is `events`. */
export const DEPENDENCY_UP_METRIC = 'aiva_dependency_up';
export const EVENTS_DEPENDENCY = 'events';

/**
 * A service's event metrics: the bus's state and its outbox relay. Counting starts at creation; `register` adds
 * them to the service's registry (`server.metrics.registry`), whose `/metrics` renders them.
 *
 * - `aiva_dependency_up{dependency="events"}`: 1 while the bus can take events, 0 while it cannot (NATS down).
 *   Given the service's dependency monitor (`register(registry, server.dependencies)`), the bus's state changes
 *   are reported to it (its gauge and its one log line per change); else the series is set on the registry's
 *   `aiva_dependency_up` gauge (made when missing);
 * - `aiva_outbox_pending` / `aiva_outbox_quarantined`: rows waiting / quarantined in the outbox (read from the
 *   store when scraped);
 * - `aiva_outbox_published_total` / `aiva_outbox_quarantined_total`: events this process published / rows it
 *   quarantined;
 * - `aiva_outbox_relay_leader`: 1 while this instance holds the outbox's relay lease (the others stand by).
 */
export interface EventMetrics {
  /** Hooks for the relay (`OutboxRelayOptions.observer`). */
  readonly observer: OutboxRelayObserver;
  /** The bus's state as last reported. */
  readonly busState: BusState;
  /**
   * Adds the metrics to a registry; with `dependencies` (the server kit's monitor) the bus's state goes to it.
   * Calling it again with the same registry is harmless.
   */
  register(registry: Registry, dependencies?: Pick<DependencyMonitor, 'reporter' | 'declare'>): void;
  /** Stops following the bus's state. */
  close(): void;
}

export interface EventMetricsOptions {
  bus: EventBus;
  /** The outbox the relay publishes (pending / quarantined gauges). */
  store?: OutboxStore;
  logger?: Logger;
}

/** Outbox sizes are read at most this often (a scrape asks for both gauges). */
const STATS_REUSE_MS = 1_000;

export function createEventMetrics(options: EventMetricsOptions): EventMetrics {
  const { bus, store, logger } = options;
  let busState: BusState = 'up';
  let leader = 0;
  const dependencyGauges = new Set<Gauge<string>>();
  const monitors = new Set<Pick<DependencyMonitor, 'reporter'>>();
  const registries = new Set<Registry>();

  const setDependency = (gauge: Gauge<string>) => {
    try {
      gauge.set({ dependency: EVENTS_DEPENDENCY }, busState === 'up' ? 1 : 0);
    } catch (error) {
      // A gauge of that name without a `dependency` label: leave it alone.
      dependencyGauges.delete(gauge);
      logger?.warn({ err: errorMessage(error) }, `cannot report the event bus on ${DEPENDENCY_UP_METRIC}`);
    }
  };
  const report = (monitor: Pick<DependencyMonitor, 'reporter'>) => {
    const reporter = monitor.reporter(EVENTS_DEPENDENCY);
    if (busState === 'up') reporter.up();
    else reporter.down(new Error('the event bus cannot be reached; events wait in the outbox'));
  };
  const unwatch = bus.watchState?.((state) => {
    busState = state;
    for (const gauge of dependencyGauges) setDependency(gauge);
    for (const monitor of monitors) report(monitor);
  });

  let stats: { at: number; value: Promise<OutboxStats> } | null = null;
  let lastStats: OutboxStats = { pending: 0, quarantined: 0 };
  const readStats = async (): Promise<OutboxStats> => {
    if (!store) return lastStats;
    const now = Date.now();
    if (!stats || now - stats.at > STATS_REUSE_MS) {
      stats = {
        at: now,
        value: store.outboxStats().then(
          (value) => {
            lastStats = value;
            return value;
          },
          () => lastStats, // the store is down: report the last sizes known
        ),
      };
    }
    return stats.value;
  };

  const published = new Counter({
    name: 'aiva_outbox_published_total',
    help: 'Events this process published from its outbox',
    registers: [],
  });
  const quarantinedTotal = new Counter({
    name: 'aiva_outbox_quarantined_total',
    help: 'Outbox rows this process quarantined (failed validation or ran out of publish attempts)',
    registers: [],
  });
  const pendingGauge = new Gauge({
    name: 'aiva_outbox_pending',
    help: 'Outbox rows waiting to be published',
    registers: [],
    async collect() {
      this.set((await readStats()).pending);
    },
  });
  const quarantinedGauge = new Gauge({
    name: 'aiva_outbox_quarantined',
    help: 'Outbox rows in quarantine (skipped by the relay until replayed)',
    registers: [],
    async collect() {
      this.set((await readStats()).quarantined);
    },
  });
  const leaderGauge = new Gauge({
    name: 'aiva_outbox_relay_leader',
    help: '1 while this instance holds the outbox relay lease (publishes the outbox)',
    registers: [],
    collect() {
      this.set(leader);
    },
  });

  return {
    observer: {
      published: (count) => published.inc(count),
      quarantined: () => quarantinedTotal.inc(),
      leadership: (held) => {
        leader = held ? 1 : 0;
      },
    },
    get busState() {
      return busState;
    },
    register(registry, dependencies) {
      if (registries.has(registry)) return;
      registries.add(registry);
      if (dependencies) {
        dependencies.declare(EVENTS_DEPENDENCY, 'degraded');
        monitors.add(dependencies);
        // Buses without a state (memory, SQLite) are reported by the `/ready` check alone.
        if (bus.watchState) report(dependencies);
      } else {
        const existing = registry.getSingleMetric(DEPENDENCY_UP_METRIC);
        let dependency: Gauge<string> | undefined;
        if (existing instanceof Gauge) dependency = existing as Gauge<string>;
        else if (!existing) {
          dependency = new Gauge({
            name: DEPENDENCY_UP_METRIC,
            help: 'Whether a dependency of the service can be used now (1) or not (0), by dependency',
            labelNames: ['dependency'],
            registers: [registry],
          });
        }
        if (dependency) {
          dependencyGauges.add(dependency);
          setDependency(dependency);
        }
      }
      const own: Array<[string, Counter | Gauge]> = [
        ['aiva_outbox_published_total', published],
        ['aiva_outbox_quarantined_total', quarantinedTotal],
        ['aiva_outbox_relay_leader', leaderGauge],
        ...(store
          ? ([
              ['aiva_outbox_pending', pendingGauge],
              ['aiva_outbox_quarantined', quarantinedGauge],
            ] as Array<[string, Gauge]>)
          : []),
      ];
      for (const [name, metric] of own) {
        if (!registry.getSingleMetric(name)) registry.registerMetric(metric);
      }
    },
    close() {
      unwatch?.();
    },
  };
}
