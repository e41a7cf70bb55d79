import type { InstanceView } from '@aiva/shared';
import { Counter, collectDefaultMetrics, Gauge, Registry as MetricsRegistry } from 'prom-client';
import type { InstanceRecord } from './instance.js';

/** What the metrics read at each scrape: every instance's record (traffic totals) and its view. */
export type MetricsSource = () => Array<{ record: InstanceRecord; view: InstanceView }>;

export interface RegistryMetrics {
  registry: MetricsRegistry;
  contentType: string;
  render(): Promise<string>;
  /** Counts one composition (live) or load (committed) of the supergraph. */
  composition(outcome: 'ok' | 'failed'): void;
}

const BREAKER_STATES = ['closed', 'half-open', 'open'] as const;

/**
 * The orchestrator's metrics, in a registry of its own. Per instance (labels `service`, `instance`), from the
 * gateways' reports: `aiva_instance_requests_total`, `aiva_instance_errors_total`,
 * `aiva_instance_connection_failures_total`, `aiva_instance_timeouts_total`,
 * `aiva_instance_request_duration_seconds_sum` / `_count`, `aiva_instance_breaker_state{state}` (1 for the
 * current one); from the registry: `aiva_instance_healthy`, `aiva_instance_routable`. Plus
 * `aiva_supergraph_compositions_total{outcome}` and Node's process metrics. The per-instance series are built
 * at each scrape from the registry's totals, so an instance that leaves takes its series with it.
 */
export function createRegistryMetrics(source: MetricsSource): RegistryMetrics {
  const registry = new MetricsRegistry();
  collectDefaultMetrics({ register: registry });
  const labelNames = ['service', 'instance'] as const;
  const labelsOf = (view: InstanceView) => ({ service: view.service, instance: view.instanceId });

  const totals: Array<[string, string, (record: InstanceRecord) => number]> = [
    ['aiva_instance_requests_total', 'Requests gateways sent to the instance', (r) => r.traffic.requests],
    [
      'aiva_instance_errors_total',
      'Failed responses (5xx, not GraphQL) of the instance',
      (r) => r.traffic.errors,
    ],
    [
      'aiva_instance_connection_failures_total',
      'Requests to the instance that never got an answer (refused, reset)',
      (r) => r.traffic.connectionFailures,
    ],
    ['aiva_instance_timeouts_total', 'Requests to the instance that timed out', (r) => r.traffic.timeouts],
    [
      'aiva_instance_request_duration_seconds_sum',
      'Sum of the latencies of the requests to the instance, in seconds',
      (r) => r.traffic.latencySecondsSum,
    ],
    [
      'aiva_instance_request_duration_seconds_count',
      'Requests whose latency is in the sum',
      (r) => r.traffic.requests,
    ],
  ];
  for (const [name, help, value] of totals) {
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const { record, view } of source()) this.inc(labelsOf(view), value(record));
      },
    });
  }
  new Gauge({
    name: 'aiva_instance_breaker_state',
    help: 'The worst breaker state gateways report for the instance (1 for the current state)',
    labelNames: [...labelNames, 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { view } of source()) {
        for (const state of BREAKER_STATES)
          this.set({ ...labelsOf(view), state }, view.breaker === state ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'aiva_instance_healthy',
    help: 'Whether the instance is healthy (1) or starting / unhealthy (0)',
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const { view } of source()) this.set(labelsOf(view), view.health === 'healthy' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'aiva_instance_routable',
    help: 'Whether the instance is in the routing table',
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const { view } of source()) this.set(labelsOf(view), view.routable ? 1 : 0);
    },
  });
  const compositions = new Counter({
    name: 'aiva_supergraph_compositions_total',
    help: 'Supergraph compositions (live) or loads (committed), by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  });
  compositions.inc({ outcome: 'ok' }, 0);
  compositions.inc({ outcome: 'failed' }, 0);

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    composition: (outcome) => compositions.inc({ outcome }),
  };
}
