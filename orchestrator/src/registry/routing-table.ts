import { createHash } from 'node:crypto';
import type { RouteDeclaration, RoutingTable } from '@aiva/shared';
import { graphqlUrlOf, type InstanceRecord } from './instance.js';

/** Two services declared the same route prefix: the first registered keeps it. */
export interface RouteConflict {
  prefix: string;
  /** The service the prefix is routed to. */
  keptBy: string;
  /** The service whose declaration was ignored. */
  ignored: string;
}

export interface RoutingTableInput {
  supergraph: RoutingTable['supergraph'];
  /** The routable instances (healthy, schema not mismatched), any kind. */
  routable: readonly InstanceRecord[];
  /** The registry started empty and may not have heard from every live instance yet. */
  rebuilding?: boolean;
}

export interface BuiltRoutingTable {
  table: RoutingTable;
  conflicts: RouteConflict[];
}

/**
 * The routing table from the routable instances: subgraph instances grouped by service (gateways are not
 * routed to), and the routes they declared, deduplicated per service; a prefix two services claim goes to the
 * service whose instance registered first. The etag hashes the content (not `generatedAt`), so it changes only
 * when routing changes.
 */
export function buildRoutingTable(input: RoutingTableInput, now: Date): BuiltRoutingTable {
  const instances = input.routable
    .filter((record) => record.kind !== 'gateway')
    .sort((a, b) => compare(a.registeredAt, b.registeredAt) || compare(a.instanceId, b.instanceId));

  const services: RoutingTable['services'] = {};
  for (const record of [...instances].sort((a, b) => compare(a.instanceId, b.instanceId))) {
    services[record.service] ??= { instances: [] };
    services[record.service]!.instances.push({
      id: record.instanceId,
      url: record.url,
      graphqlUrl: graphqlUrlOf(record),
    });
  }
  const sortedServices = Object.fromEntries(Object.entries(services).sort(([a], [b]) => compare(a, b)));

  const { routes, conflicts } = collectRoutes(instances);
  const content = {
    supergraph: input.supergraph,
    services: sortedServices,
    routes,
    ...(input.rebuilding ? { rebuilding: true } : {}),
  };
  const etag = createHash('sha256').update(JSON.stringify(content)).digest('hex').slice(0, 32);
  return { table: { etag, generatedAt: now.toISOString(), ...content }, conflicts };
}

/** Routes in registration order: per service each prefix once; across services the first claim wins. */
function collectRoutes(instances: readonly InstanceRecord[]): {
  routes: RoutingTable['routes'];
  conflicts: RouteConflict[];
} {
  const owner = new Map<string, RouteDeclaration & { service: string }>();
  const conflicts = new Map<string, RouteConflict>();
  for (const record of instances) {
    for (const route of record.routes) {
      const claimed = owner.get(route.prefix);
      if (!claimed) {
        owner.set(route.prefix, {
          service: record.service,
          prefix: route.prefix,
          websocket: route.websocket,
        });
      } else if (claimed.service !== record.service) {
        const key = `${route.prefix} ${record.service}`;
        conflicts.set(key, { prefix: route.prefix, keptBy: claimed.service, ignored: record.service });
      }
    }
  }
  return { routes: [...owner.values()], conflicts: [...conflicts.values()] };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
