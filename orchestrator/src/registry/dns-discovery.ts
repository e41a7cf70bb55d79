import { lookup, Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '@aiva/shared';
import type { DnsDiscoveryTarget } from '../config.js';
import type { RegistrySettings } from './defaults.js';
import type { DiscoveredInstance, Registry } from './registry.js';
import type { Lease } from './replica.js';

/** Answers that mean "this name has no addresses" (as opposed to "the resolver is in trouble"). */
const NO_ADDRESSES = new Set(['ENOTFOUND', 'ENODATA']);

export interface DnsDiscoveryOptions {
  targets: readonly DnsDiscoveryTarget[];
  /** DNS servers (`host[:port]`); empty: the system's resolution (getaddrinfo, /etc/hosts included). */
  servers: readonly string[];
  refreshMs: number;
  registry: Registry;
  settings: RegistrySettings;
  lease: Lease;
  logger: Logger;
}

export interface DnsDiscovery {
  /** Resolves every name now and reconciles the registry with the answers. */
  refresh(): Promise<void>;
  stop(): Promise<void>;
}

/** The instance at one address: `dns:users@127.0.0.2:3001`, `http://127.0.0.2:3001`. */
export function discoveredInstance(service: string, address: string, port: number): DiscoveredInstance {
  const host = isIP(address) === 6 ? `[${address}]` : address;
  return { instanceId: `dns:${service}@${host}:${port}`, url: `http://${host}:${port}` };
}

/**
 * DNS discovery: every `refreshMs` (on the replica holding the lease), each name resolves to all its A and AAAA
 * addresses and every address is an instance (`source: 'dns'`), probed like the others; addresses that leave the
 * answer leave the registry. A name the resolver cannot answer for (timeout, refusal) keeps its last answer: a
 * DNS outage must not empty the routing table. Each instance's SDL is fetched with `{ _service { sdl } }` until
 * known, for live composition and the schema check. This is how AIVA runs under compose `--scale` or
 * Kubernetes headless Services without self-registration.
 */
export function startDnsDiscovery(options: DnsDiscoveryOptions): DnsDiscovery {
  const { registry, logger, settings } = options;
  const resolver = new Resolver({ timeout: Math.min(settings.probeTimeoutMs * 2, 5_000), tries: 2 });
  if (options.servers.length > 0) resolver.setServers([...options.servers]);
  const byService = new Map<string, DnsDiscoveryTarget[]>();
  for (const target of options.targets) {
    byService.set(target.service, [...(byService.get(target.service) ?? []), target]);
  }
  const troubled = new Set<string>();
  /** When each instance's SDL was last fetched (epoch ms). */
  const sdlFetchedAt = new Map<string, number>();
  const controller = new AbortController();
  let running: Promise<void> | undefined;

  async function addressesOf(host: string): Promise<string[] | undefined> {
    if (isIP(host)) return [host];
    if (options.servers.length === 0) {
      try {
        return (await lookup(host, { all: true })).map((a) => a.address);
      } catch (error) {
        return NO_ADDRESSES.has((error as NodeJS.ErrnoException).code ?? '') ? [] : undefined;
      }
    }
    const answers = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    const found = answers.flatMap((a) => (a.status === 'fulfilled' ? a.value : []));
    if (answers.some((a) => a.status === 'fulfilled')) return found;
    const codes = answers.map((a) =>
      a.status === 'rejected' ? (a.reason as NodeJS.ErrnoException).code : '',
    );
    return codes.every((code) => NO_ADDRESSES.has(code ?? '')) ? [] : undefined;
  }

  async function refreshService(service: string, targets: readonly DnsDiscoveryTarget[]): Promise<void> {
    const found: DiscoveredInstance[] = [];
    for (const target of targets) {
      const name = `${target.host}:${target.port}`;
      const addresses = await addressesOf(target.host);
      if (addresses === undefined) {
        if (!troubled.has(name))
          logger.warn({ instanceOf: service, name }, 'DNS did not answer: keeping the last answer');
        troubled.add(name);
        return;
      }
      if (troubled.delete(name)) logger.info({ instanceOf: service, name }, 'DNS answers again');
      for (const address of [...new Set(addresses)].sort()) {
        found.push(discoveredInstance(service, address, target.port));
      }
    }
    await registry.reconcileDiscovered(service, found);
    const present = new Set(found.map((f) => f.instanceId));
    for (const id of sdlFetchedAt.keys()) {
      if (id.startsWith(`dns:${service}@`) && !present.has(id)) sdlFetchedAt.delete(id);
    }
    await Promise.all(found.map((instance) => refreshSdl(instance.instanceId)));
  }

  /**
   * Fetches an instance's SDL while it is unknown, and once after each time it becomes healthy (a process
   * restarted behind the same address may serve a new one).
   */
  async function refreshSdl(id: string): Promise<void> {
    const record = registry.record(id);
    if (!record) return;
    const fetchedAt = sdlFetchedAt.get(id);
    const healthySince = record.health.state === 'healthy' ? Date.parse(record.health.since) : undefined;
    const stale = healthySince !== undefined && (fetchedAt === undefined || healthySince > fetchedAt);
    if (record.sdlHash !== null && !stale) return;
    const sdl = await fetchSdl(
      `${record.url}${record.graphqlPath}`,
      settings.sdlFetchTimeoutMs,
      controller.signal,
    );
    if (sdl === undefined) return;
    sdlFetchedAt.set(id, Date.now());
    await registry.setSdl(id, sdl);
  }

  async function refresh(): Promise<void> {
    await Promise.all(
      [...byService].map(([service, targets]) =>
        refreshService(service, targets).catch((error: unknown) =>
          logger.warn({ instanceOf: service, err: (error as Error).message }, 'DNS discovery failed'),
        ),
      ),
    );
  }

  const tick = () => {
    if (!options.lease.held() || controller.signal.aborted) return;
    running ??= refresh().finally(() => {
      running = undefined;
    });
  };
  const timer = byService.size > 0 ? setInterval(tick, options.refreshMs) : undefined;
  timer?.unref();
  if (byService.size > 0) {
    logger.info(
      { targets: options.targets.map((t) => `${t.service}=${t.host}:${t.port}`) },
      'DNS discovery on',
    );
    tick();
  }

  return {
    refresh: () => {
      running ??= refresh().finally(() => {
        running = undefined;
      });
      return running;
    },
    async stop() {
      clearInterval(timer);
      controller.abort();
      await running;
    },
  };
}

/** The SDL a subgraph serves (`{ _service { sdl } }`), or undefined when it cannot tell now. */
export async function fetchSdl(
  graphqlUrl: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const response = await fetch(graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ query: '{ _service { sdl } }' }),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    if (!response.ok) return undefined;
    const body = (await response.json()) as { data?: { _service?: { sdl?: unknown } } };
    const sdl = body.data?._service?.sdl;
    return typeof sdl === 'string' && sdl.trim() !== '' ? sdl : undefined;
  } catch {
    return undefined;
  }
}
