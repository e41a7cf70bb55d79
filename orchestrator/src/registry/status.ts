import type { InstanceView } from '@aiva/shared';
import type { CompositionStatus } from './composition.js';
import type { Registry } from './registry.js';
import type { RouteConflict } from './routing-table.js';

/** One process the supervisor runs, as the status page shows it. The supervisor provides these. */
export interface ProcessStatusView {
  service: string;
  /** The supervisor's name for the process slot, `users#2`. */
  slot: string;
  pid: number | null;
  state: 'starting' | 'running' | 'restarting' | 'stopped' | 'crash-loop';
  /** Restarts since the orchestrator started it. */
  restarts: number;
  /** When the current (or last) process started (ISO), null before the first start. */
  startedAt: string | null;
  lastExit: { code: number | null; signal: string | null; at: string } | null;
  /** Why it is stopped or in a crash loop, for people. */
  reason: string | null;
}

/** What the status page can ask the supervisor. */
export interface SupervisorStatusProvider {
  status(): ProcessStatusView[];
}

/** A service and its instances. */
export interface ServiceStatus {
  name: string;
  /** Instances in the routing table now. */
  routable: number;
  instances: InstanceView[];
}

/** `GET /v1/status`: everything the status page shows. */
export interface RegistryStatus {
  generatedAt: string;
  orchestrator: {
    store: 'memory' | 'redis';
    mode: 'committed' | 'live';
    startedAt: string;
    uptimeSeconds: number;
    /** Whether this replica runs the probes, DNS discovery and the sweep. */
    leader: boolean;
    /** Whether registrations can be accepted (a REGISTRY_SECRET is set). */
    registrationOpen: boolean;
    pid: number;
  };
  services: ServiceStatus[];
  routes: Array<{ prefix: string; service: string; websocket: boolean }>;
  routeConflicts: RouteConflict[];
  composition: CompositionStatus;
  /** The supervisor's processes; null when this orchestrator supervises none. */
  processes: ProcessStatusView[] | null;
  routingEtag: string;
}

export interface StatusContext {
  registry: Registry;
  storeKind: 'memory' | 'redis';
  startedAt: Date;
  leader: () => boolean;
  registrationOpen: boolean;
  supervisor: SupervisorStatusProvider | undefined;
  now?: () => Date;
}

/** The status page's data: services (from the registry and the supergraph) with their instances, and the rest. */
export function buildStatus(context: StatusContext): RegistryStatus {
  const { registry } = context;
  const now = context.now?.() ?? new Date();
  const instances = registry.list();
  const services = registry.services().map((name) => {
    const own = instances.filter((i) => i.service === name);
    return { name, routable: own.filter((i) => i.routable).length, instances: own };
  });
  const table = registry.table();
  return {
    generatedAt: now.toISOString(),
    orchestrator: {
      store: context.storeKind,
      mode: registry.composition().mode,
      startedAt: context.startedAt.toISOString(),
      uptimeSeconds: Math.round((now.getTime() - context.startedAt.getTime()) / 1000),
      leader: context.leader(),
      registrationOpen: context.registrationOpen,
      pid: process.pid,
    },
    services,
    routes: table.routes,
    routeConflicts: registry.conflicts(),
    composition: registry.composition(),
    processes: context.supervisor ? safeProcesses(context.supervisor) : null,
    routingEtag: table.etag,
  };
}

function safeProcesses(supervisor: SupervisorStatusProvider): ProcessStatusView[] {
  try {
    return supervisor.status();
  } catch {
    return [];
  }
}
