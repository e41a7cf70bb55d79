import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../log.js';

export type DependencyState = 'up' | 'down';

/** What an adapter or a check tells about one dependency of a service. */
export interface DependencyReporter {
  readonly dependency: string;
  /** The dependency answers. Logged only when it was down. */
  up(): void;
  /** The dependency does not answer. Logged only when it was not already down (one line per outage). */
  down(error?: unknown): void;
  /**
   * One request was served without the dependency (a soft dependency failing open: no rate limit, no persisted
   * query, no revocation check, stale keys). Counted, never logged per request.
   */
  degraded(feature: string): void;
}

/** What a dependency's outage costs the service: its readiness (hard) or a feature (soft). */
export type DependencyImpact = 'not ready' | 'degraded';

/**
 * The dependencies of one service and their last known state: fed by the adapters (connection events, failed
 * commands) and by the `/ready` checks. One log line per state change, and two metrics:
 * `aiva_dependency_up{dependency}` (1 up, 0 down) and `aiva_degraded_requests_total{dependency,feature}`.
 */
export interface DependencyMonitor {
  /** The reporter of one dependency (the same one for the same name). */
  reporter(dependency: string): DependencyReporter;
  /** Tells what an outage of `dependency` costs, for the log lines (the server kit sets it from `/ready`). */
  declare(dependency: string, impact: DependencyImpact): void;
  /** The last known state of every dependency reported so far. */
  states(): Record<string, DependencyState>;
  /** Requests served without each dependency so far, by feature (for tests and the status page). */
  degradedCount(dependency: string, feature?: string): number;
  /** Adds the two metrics to a registry (the service's); once per registry. */
  register(registry: Registry): void;
}

function messageOf(error: unknown): string | undefined {
  if (error === undefined) return undefined;
  return error instanceof Error ? error.message : String(error);
}

export function createDependencyMonitor(logger?: Logger): DependencyMonitor {
  const states = new Map<string, DependencyState>();
  const impacts = new Map<string, DependencyImpact>();
  const reporters = new Map<string, DependencyReporter>();
  const degradedCounts = new Map<string, number>();
  const registries = new WeakSet<Registry>();
  const up = new Gauge({
    name: 'aiva_dependency_up',
    help: 'Whether a dependency answers (1) or not (0), as last seen by the service',
    labelNames: ['dependency'],
    registers: [],
    collect() {
      for (const [dependency, state] of states) this.set({ dependency }, state === 'up' ? 1 : 0);
    },
  });
  const degraded = new Counter({
    name: 'aiva_degraded_requests_total',
    help: 'Requests served without a dependency that failed (fail-open), by dependency and feature',
    labelNames: ['dependency', 'feature'],
    registers: [],
  });

  function reporter(dependency: string): DependencyReporter {
    const known = reporters.get(dependency);
    if (known) return known;
    const created: DependencyReporter = {
      dependency,
      up() {
        const previous = states.get(dependency);
        states.set(dependency, 'up');
        if (previous === 'down') logger?.info({ dependency }, `${dependency} is up again`);
      },
      down(error) {
        const previous = states.get(dependency);
        states.set(dependency, 'down');
        if (previous === 'down') return;
        const impact = impacts.get(dependency);
        logger?.warn(
          { dependency, err: messageOf(error), ...(impact ? { impact } : {}) },
          impact ? `${dependency} is down: ${impact}` : `${dependency} is down`,
        );
      },
      degraded(feature) {
        degraded.inc({ dependency, feature });
        const key = `${dependency}\u0000${feature}`;
        degradedCounts.set(key, (degradedCounts.get(key) ?? 0) + 1);
      },
    };
    reporters.set(dependency, created);
    return created;
  }

  return {
    reporter,
    declare(dependency, impact) {
      impacts.set(dependency, impact);
    },
    states: () => Object.fromEntries(states),
    degradedCount(dependency, feature) {
      let total = 0;
      for (const [key, count] of degradedCounts) {
        const [name, what] = key.split('\u0000');
        if (name === dependency && (feature === undefined || what === feature)) total += count;
      }
      return total;
    },
    register(registry) {
      if (registries.has(registry)) return;
      registries.add(registry);
      registry.registerMetric(up);
      registry.registerMetric(degraded);
    },
  };
}

/** A reporter for an adapter used outside a service's monitor (tools, tests): it logs its state changes. */
export function loggingReporter(dependency: string, logger?: Logger): DependencyReporter {
  return createDependencyMonitor(logger).reporter(dependency);
}
