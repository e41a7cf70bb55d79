import type { InstanceTraffic } from '@aiva/shared';
import type { HealthRecord } from './instance.js';

// How probes and the gateways' reports move an instance between starting, healthy and unhealthy. Pure: the
// registry applies the results and stores them only when they changed.

/** The outcome of one `/ready` probe. */
export type ProbeResult = { ok: true } | { ok: false; reason: string };

export interface ProbeThresholds {
  /** Consecutive failures that make an instance unhealthy. */
  unhealthy: number;
  /** Consecutive successes that make it healthy. */
  healthy: number;
}

export interface EjectionPolicy {
  baseMs: number;
  maxMs: number;
  minRequests: number;
  errorRatio: number;
}

/** The health after one probe. Returns `health` itself when nothing changed, so callers can skip the write. */
export function afterProbe(
  health: HealthRecord,
  result: ProbeResult,
  thresholds: ProbeThresholds,
  now: Date,
): HealthRecord {
  const next = result.ok
    ? afterSuccess(health, thresholds, now)
    : afterFailure(health, result.reason, thresholds, now);
  return sameHealth(health, next) ? health : next;
}

function afterSuccess(health: HealthRecord, thresholds: ProbeThresholds, now: Date): HealthRecord {
  const successes = Math.min(health.successes + 1, thresholds.healthy);
  const counted = { ...health, successes, failures: 0 };
  if (health.state === 'healthy') return counted;
  if (successes < thresholds.healthy) return counted;
  if (health.ejectedUntil !== null && Date.parse(health.ejectedUntil) > now.getTime()) return counted;
  return { ...counted, state: 'healthy', reason: null, ejectedUntil: null, since: now.toISOString() };
}

function afterFailure(
  health: HealthRecord,
  reason: string,
  thresholds: ProbeThresholds,
  now: Date,
): HealthRecord {
  const failures = Math.min(health.failures + 1, thresholds.unhealthy);
  const counted = { ...health, failures, successes: 0 };
  const ejected = health.ejectedUntil !== null;
  if (health.state === 'unhealthy') return ejected ? counted : { ...counted, reason };
  if (failures >= thresholds.unhealthy)
    return { ...counted, state: 'unhealthy', reason, since: now.toISOString() };
  // A starting instance says why it is not up yet; a healthy one stays healthy until the threshold.
  return health.state === 'starting' ? { ...counted, reason } : counted;
}

/** What a gateway's report on one instance means for it. */
export interface TrafficVerdict {
  health: HealthRecord;
  /** Connection failures or timeouts were seen: probe it now to know whether it is really down. */
  probeNow: boolean;
  /** The report ejected it. */
  ejected: boolean;
}

/**
 * Passive health from a gateway's report. Connection failures or timeouts ask for an immediate probe (the probe
 * decides). A window with only failed responses, at least `minRequests` of them and more than `errorRatio`
 * failing, ejects the instance for `baseMs`, doubling per consecutive ejection up to `maxMs`; after that a
 * passing probe brings it back. A clean window of `minRequests` or more resets the ejection count.
 */
export function afterTraffic(
  health: HealthRecord,
  traffic: InstanceTraffic,
  policy: EjectionPolicy,
  now: Date,
): TrafficVerdict {
  const probeNow = traffic.connectionFailures > 0 || traffic.timeouts > 0;
  const enough = traffic.requests >= policy.minRequests;
  const failing = enough && traffic.errors / traffic.requests > policy.errorRatio;
  const stillEjected = health.ejectedUntil !== null && Date.parse(health.ejectedUntil) > now.getTime();
  if (!probeNow && failing && !stillEjected) {
    const ejections = health.ejections + 1;
    const durationMs = Math.min(policy.baseMs * 2 ** (ejections - 1), policy.maxMs);
    return {
      probeNow: false,
      ejected: true,
      health: {
        ...health,
        state: 'unhealthy',
        reason: `ejected: ${traffic.errors} of ${traffic.requests} requests failed`,
        successes: 0,
        ejections,
        ejectedUntil: new Date(now.getTime() + durationMs).toISOString(),
        since: health.state === 'unhealthy' ? health.since : now.toISOString(),
      },
    };
  }
  if (enough && !failing && !probeNow && health.state === 'healthy' && health.ejections > 0) {
    return { probeNow, ejected: false, health: { ...health, ejections: 0 } };
  }
  return { probeNow, ejected: false, health };
}

function sameHealth(a: HealthRecord, b: HealthRecord): boolean {
  return (
    a.state === b.state &&
    a.reason === b.reason &&
    a.failures === b.failures &&
    a.successes === b.successes &&
    a.ejections === b.ejections &&
    a.ejectedUntil === b.ejectedUntil
  );
}
