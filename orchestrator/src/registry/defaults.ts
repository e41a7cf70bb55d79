import type { OrchestratorConfig } from '../config.js';

/** Settings of the registry that are not environment variables: sensible defaults, tunable by tests. */
export interface RegistryTuning {
  /** How often a replica checks the shared store's version for changes made by other replicas. */
  syncIntervalMs: number;
  /** How long the lease of the replica that probes, resolves DNS names and sweeps lasts without renewal. */
  leaseTtlMs: number;
  /** How often silent instances are looked for (the TTL itself is INSTANCE_TTL_MS). */
  sweepIntervalMs: number;
  /** First passive ejection: out of the table for this long; doubles per consecutive ejection. */
  ejectionBaseMs: number;
  /** Longest passive ejection. */
  ejectionMaxMs: number;
  /** A report window needs at least this many requests to the instance to eject it... */
  ejectionMinRequests: number;
  /** ...and more than this share of them failed. */
  ejectionErrorRatio: number;
  /** A gateway's breaker state and request rate count while its last report is younger than this. */
  reportStaleMs: number;
  /**
   * How long a registry that started empty says `rebuilding` in its table; null: one instance TTL plus the first
   * probes of the instances registering again (`rebuildWindowOf`), 0: never.
   */
  rebuildWindowMs: number | null;
  /** Timeout of fetching an instance's SDL (`{ _service { sdl } }`) for DNS-discovered instances. */
  sdlFetchTimeoutMs: number;
  /** Largest request body: registrations carry SDLs of up to 2,000,000 characters, JSON-escaped. */
  bodyLimitBytes: number;
}

/** The defaults, in one place. */
export const DEFAULT_REGISTRY_TUNING: RegistryTuning = {
  syncIntervalMs: 500,
  leaseTtlMs: 3_000,
  sweepIntervalMs: 500,
  ejectionBaseMs: 10_000,
  ejectionMaxMs: 120_000,
  ejectionMinRequests: 10,
  ejectionErrorRatio: 0.5,
  reportStaleMs: 30_000,
  sdlFetchTimeoutMs: 2_000,
  rebuildWindowMs: null,
  bodyLimitBytes: 3 * 1024 * 1024,
};

/** Everything the registry core and its loops read: the environment's settings plus the tuning. */
export interface RegistrySettings extends RegistryTuning {
  heartbeatIntervalMs: number;
  instanceTtlMs: number;
  probeIntervalMs: number;
  probeTimeoutMs: number;
  unhealthyThreshold: number;
  healthyThreshold: number;
  /** How long a record outlives its last write in a shared store (Redis), so a dead orchestrator leaves no ghosts. */
  recordTtlMs: number;
}

export function registrySettings(
  config: OrchestratorConfig,
  tuning: Partial<RegistryTuning> = {},
): RegistrySettings {
  return {
    ...DEFAULT_REGISTRY_TUNING,
    ...tuning,
    heartbeatIntervalMs: config.HEARTBEAT_INTERVAL_MS,
    instanceTtlMs: config.INSTANCE_TTL_MS,
    probeIntervalMs: config.PROBE_INTERVAL_MS,
    probeTimeoutMs: config.PROBE_TIMEOUT_MS,
    unhealthyThreshold: config.UNHEALTHY_THRESHOLD,
    healthyThreshold: config.HEALTHY_THRESHOLD,
    recordTtlMs: recordTtlMs(config.INSTANCE_TTL_MS),
  };
}

/** Ten TTLs, at least a minute: long enough for an orchestrator restart, short enough not to keep ghosts. */
export function recordTtlMs(instanceTtlMs: number): number {
  return Math.max(10 * instanceTtlMs, 60_000);
}

/**
 * How long a registry that started empty may still be hearing from instances that ran before it: every live one
 * heartbeats within a TTL, hears 404, registers again and is probed at once, then needs `healthyThreshold`
 * passing probes to be routed.
 */
export function rebuildWindowOf(settings: RegistrySettings): number {
  if (settings.rebuildWindowMs !== null) return settings.rebuildWindowMs;
  return (
    settings.instanceTtlMs + settings.healthyThreshold * settings.probeIntervalMs + settings.probeTimeoutMs
  );
}
