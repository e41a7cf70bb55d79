import type { Logger } from '../log.js';
import { sleepUnlessAborted } from '../sleep.js';
import { MAX_ROUTING_WAIT_SECONDS, REGISTRY_API, type RoutingTable, routingTableSchema } from './protocol.js';

/** Where routing tables come from: the last one received, and word of each new one. */
export interface RoutingSource {
  /** The last table received; undefined while the orchestrator has never been reached. */
  current(): RoutingTable | undefined;
  /** Calls `listener` with every new table; returns the unsubscribe function. */
  onChange(listener: (table: RoutingTable) => void): () => void;
}

/**
 * The table to route by when `next` comes from a registry still rebuilding: `next`, plus the services (their
 * instances and routes) `previous` had and `next` has no instance of yet. A restarted registry without Redis only
 * knows the instances that registered again since it started; without this, a service not back yet would be
 * unreachable for those seconds. A service `next` has instances of is taken as `next` has it, so an instance that
 * went away is not kept. The registry's first table without `rebuilding` replaces this one whole.
 */
export function routingDuringRebuild(previous: RoutingTable | undefined, next: RoutingTable): RoutingTable {
  if (!next.rebuilding || !previous) return next;
  const kept = Object.keys(previous.services).filter(
    (service) => (next.services[service]?.instances.length ?? 0) === 0,
  );
  if (kept.length === 0) return next;
  const services: RoutingTable['services'] = { ...next.services };
  for (const service of kept) services[service] = previous.services[service]!;
  const prefixes = new Set(next.routes.map((route) => route.prefix));
  const routes = [
    ...next.routes,
    ...previous.routes.filter((route) => kept.includes(route.service) && !prefixes.has(route.prefix)),
  ];
  return { ...next, services, routes };
}

export interface RoutingFollowerOptions {
  orchestratorUrl: string;
  logger?: Logger;
  /** How long one long-poll may wait for a change, in seconds (default 25). */
  waitSeconds?: number;
  /** First delay after a failed poll, doubling up to `maxRetryMs` (defaults 250 and 5000). */
  retryMs?: number;
  maxRetryMs?: number;
}

export interface RoutingFollower extends RoutingSource {
  start(): void;
  /** Resolves once a first table arrived, or after `timeoutMs` (then false). */
  ready(timeoutMs: number): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * Follows the orchestrator's routing table with ETag long-polls (`GET /v1/routing?wait=` + `If-None-Match`): a
 * change arrives within one round trip, and an idle follower costs one request per `waitSeconds`. When the
 * orchestrator cannot be reached the last table stays in force (and is retried with backoff); until one was
 * ever received, `current()` is undefined and callers use their static routing URLs. A table from a registry
 * still rebuilding adds to the last one instead of replacing it (`routingDuringRebuild`).
 */
export function createRoutingFollower(options: RoutingFollowerOptions): RoutingFollower {
  const waitSeconds = Math.min(options.waitSeconds ?? 25, MAX_ROUTING_WAIT_SECONDS);
  const retryMs = options.retryMs ?? 250;
  const maxRetryMs = options.maxRetryMs ?? 5_000;
  const url = new URL(REGISTRY_API.routing, options.orchestratorUrl);
  const listeners = new Set<(table: RoutingTable) => void>();
  const firstTable: { resolve?: () => void; promise?: Promise<void> } = {};
  firstTable.promise = new Promise<void>((resolve) => {
    firstTable.resolve = resolve;
  });
  let table: RoutingTable | undefined;
  let controller: AbortController | undefined;
  let loop: Promise<void> | undefined;

  function accept(received: RoutingTable): void {
    const first = table === undefined;
    const next = routingDuringRebuild(table, received);
    table = next;
    if (first) {
      options.logger?.info({ orchestrator: options.orchestratorUrl }, 'routing table received');
      firstTable.resolve?.();
    }
    for (const listener of listeners) {
      try {
        listener(next);
      } catch (error) {
        options.logger?.error({ err: error }, 'routing table listener failed');
      }
    }
  }

  async function pollOnce(signal: AbortSignal): Promise<void> {
    const target = new URL(url);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (table) {
      target.searchParams.set('wait', String(waitSeconds));
      headers['if-none-match'] = `"${table.etag}"`;
    }
    const response = await fetch(target, {
      headers,
      signal: AbortSignal.any([signal, AbortSignal.timeout((waitSeconds + 10) * 1000)]),
    });
    if (response.status === 304) return;
    if (!response.ok) throw new Error(`routing table: HTTP ${response.status}`);
    const next = routingTableSchema.parse(await response.json());
    if (next.etag !== table?.etag) accept(next);
  }

  async function run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await pollOnce(signal);
        if (failures > 0) options.logger?.info('orchestrator reachable again: following its routing table');
        failures = 0;
      } catch (error) {
        if (signal.aborted) return;
        if (failures === 0) {
          options.logger?.warn(
            { orchestrator: options.orchestratorUrl, err: (error as Error).message },
            table
              ? 'orchestrator unreachable: keeping the last routing table'
              : 'orchestrator not reached yet: routing to the supergraph routing URLs',
          );
        }
        failures++;
        await sleepUnlessAborted(Math.min(retryMs * 2 ** Math.min(failures - 1, 10), maxRetryMs), signal);
      }
    }
  }

  return {
    current: () => table,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    start() {
      if (loop) return;
      controller = new AbortController();
      loop = run(controller.signal);
    },
    async ready(timeoutMs) {
      if (table) return true;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      try {
        return await Promise.race([firstTable.promise!.then(() => true), timedOut]);
      } finally {
        clearTimeout(timer);
      }
    },
    async stop() {
      controller?.abort();
      await loop;
      loop = undefined;
    },
  };
}
