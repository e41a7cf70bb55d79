import type {
  BreakerState,
  DiscoverySource,
  HealthState,
  InstanceKind,
  InstanceLoad,
  InstanceView,
  RouteDeclaration,
} from '@aiva/shared';

/** An instance's health as the probes and the gateways' reports made it. */
export interface HealthRecord {
  state: HealthState;
  /** Why it is not healthy (or why it is still starting), for people. */
  reason: string | null;
  /** Consecutive failed probes (capped at the unhealthy threshold). */
  failures: number;
  /** Consecutive passing probes (capped at the healthy threshold). */
  successes: number;
  /** Consecutive passive ejections: each one doubles the time out of the table. */
  ejections: number;
  /** While ejected, passing probes do not bring it back before this time (ISO); null when not ejected. */
  ejectedUntil: string | null;
  /** When `state` last changed. */
  since: string;
}

/** What one gateway last reported about an instance. */
export interface ReporterTraffic {
  breaker: BreakerState;
  /** Requests per second in that report's window. */
  requestRate: number;
  /** How long that window was (ms): the rate holds until about two windows later (gateways skip quiet ones). */
  windowMs: number;
  /** When the report arrived (epoch ms). */
  at: number;
}

/** Totals of the gateways' reports on one instance, since it registered. */
export interface TrafficTotals {
  requests: number;
  errors: number;
  connectionFailures: number;
  timeouts: number;
  latencySecondsSum: number;
  /** The latest report of each gateway, by reporter. */
  reporters: Record<string, ReporterTraffic>;
}

/** One report's figures for one instance, as a store adds them to the totals. */
export interface TrafficSample {
  requests: number;
  errors: number;
  connectionFailures: number;
  timeouts: number;
  latencySecondsSum: number;
  reporter: string;
  report: ReporterTraffic;
  /** Reporters whose last report is older than this (epoch ms) are forgotten. */
  forgetBefore: number;
}

/** Everything the registry keeps about an instance: what it registered with, plus what was learnt since. */
export interface InstanceRecord {
  service: string;
  kind: InstanceKind;
  instanceId: string;
  /** Base URL, `http://127.0.0.1:3001`. */
  url: string;
  graphqlPath: string;
  version: string;
  startedAt: string;
  routes: RouteDeclaration[];
  slot: string | null;
  pid: number | null;
  source: DiscoverySource;
  /** When the registry first learnt of it (route conflicts: the first registered keeps the prefix). */
  registeredAt: string;
  /** The hash of the SDL it serves (`sdlHash`), when known. */
  sdlHash: string | null;
  /** Last heartbeat (registered instances) or last time its name resolved to it (DNS). */
  lastHeartbeat: string;
  load: InstanceLoad | null;
  health: HealthRecord;
  traffic: TrafficTotals;
}

/** The parts of a record that change after registration. */
export type InstanceChanges = Partial<Pick<InstanceRecord, 'sdlHash' | 'lastHeartbeat' | 'load' | 'health'>>;

export function initialHealth(now: Date): HealthRecord {
  return {
    state: 'starting',
    reason: 'not probed yet',
    failures: 0,
    successes: 0,
    ejections: 0,
    ejectedUntil: null,
    since: now.toISOString(),
  };
}

export function emptyTraffic(): TrafficTotals {
  return { requests: 0, errors: 0, connectionFailures: 0, timeouts: 0, latencySecondsSum: 0, reporters: {} };
}

/** `http://127.0.0.1:3001` + `/graphql`. */
export function graphqlUrlOf(record: Pick<InstanceRecord, 'url' | 'graphqlPath'>): string {
  return `${record.url.replace(/\/+$/, '')}${record.graphqlPath}`;
}

const BREAKER_SEVERITY: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

/**
 * The worst breaker state of the reports younger than `staleMs`, and the summed request rate of the reports
 * whose window has not long passed (a gateway sends nothing for a quiet window: its last rate lapses).
 */
export function reportedTraffic(
  traffic: TrafficTotals,
  now: number,
  staleMs: number,
): { breaker: BreakerState; requestRate: number } {
  let breaker: BreakerState = 'closed';
  let requestRate = 0;
  for (const report of Object.values(traffic.reporters)) {
    const age = now - report.at;
    if (age > staleMs) continue;
    if (BREAKER_SEVERITY[report.breaker] > BREAKER_SEVERITY[breaker]) breaker = report.breaker;
    if (age <= 2 * (report.windowMs ?? 0) + 1_000) requestRate += report.requestRate;
  }
  return { breaker, requestRate: Math.round(requestRate * 100) / 100 };
}

/** The public view of a record, with what the registry derived: schema verdict and routability. */
export function viewOf(
  record: InstanceRecord,
  derived: { schema: InstanceView['schema']; routable: boolean; now: number; reportStaleMs: number },
): InstanceView {
  const { breaker, requestRate } = reportedTraffic(record.traffic, derived.now, derived.reportStaleMs);
  return {
    service: record.service,
    kind: record.kind,
    instanceId: record.instanceId,
    url: record.url,
    graphqlUrl: graphqlUrlOf(record),
    version: record.version,
    sdlHash: record.sdlHash,
    startedAt: record.startedAt,
    lastHeartbeat: record.lastHeartbeat,
    source: record.source,
    health: record.health.state,
    healthReason: record.health.state === 'healthy' ? null : record.health.reason,
    schema: derived.schema,
    routable: derived.routable,
    breaker,
    load: record.load,
    requestRate,
    routes: record.routes,
    slot: record.slot,
  };
}
