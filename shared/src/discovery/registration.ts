import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../log.js';
import { sleepUnlessAborted } from '../sleep.js';
import {
  type InstanceKind,
  type InstanceLoad,
  REGISTRY_API,
  type RegistrationInput,
  type RouteDeclaration,
  registrationAcceptedSchema,
} from './protocol.js';

/** What a service tells the registry about itself, besides where it listens. */
export interface DiscoveryOptions {
  orchestratorUrl: string;
  /** The service's registry credential (REGISTRY_TOKEN); without it the instance does not register. */
  token?: string;
  /** The host other processes reach this instance at (ADVERTISE_HOST); default: the host it binds. */
  advertiseHost?: string;
  /** The supervisor's slot (AIVA_INSTANCE_SLOT). */
  slot?: string;
  kind?: InstanceKind;
  version?: string;
  /** Public HTTP routes the gateway should forward to this service. */
  routes?: RouteDeclaration[];
}

/** Discovery settings from the variables every AIVA process reads (`commonEnvSchema`). */
export function discoveryFromEnv(config: {
  ORCHESTRATOR_URL: string;
  REGISTRY_TOKEN?: string | undefined;
  ADVERTISE_HOST?: string | undefined;
  AIVA_INSTANCE_SLOT?: string | undefined;
}): DiscoveryOptions {
  return {
    orchestratorUrl: config.ORCHESTRATOR_URL,
    ...(config.REGISTRY_TOKEN ? { token: config.REGISTRY_TOKEN } : {}),
    ...(config.ADVERTISE_HOST ? { advertiseHost: config.ADVERTISE_HOST } : {}),
    ...(config.AIVA_INSTANCE_SLOT ? { slot: config.AIVA_INSTANCE_SLOT } : {}),
  };
}

export interface InstanceRegistrationOptions extends DiscoveryOptions {
  service: string;
  /** Where the server listens (`http://127.0.0.1:3001`); the advertised URL swaps in `advertiseHost`. */
  listenUrl: string;
  graphqlPath?: string;
  sdl?: string;
  sdlHash?: string;
  load: () => InstanceLoad;
  logger?: Logger;
  /** Timeout of one call to the registry, in ms (default 2000). */
  timeoutMs?: number;
}

export interface InstanceRegistration {
  readonly instanceId: string;
  /** The URL the instance registered with. */
  readonly url: string;
  /** Whether the registry currently knows this instance. */
  registered(): boolean;
  /** Registers (retrying in the background until the registry answers), then heartbeats. */
  start(): void;
  /** Stops heartbeating and deregisters (best effort, bounded by the timeout). */
  stop(): Promise<void>;
}

/** The URL others reach a server at: its listen URL, with a wildcard bind replaced by a reachable host. */
export function advertisedUrl(listenUrl: string, advertiseHost?: string): string {
  const url = new URL(listenUrl);
  const bound = url.hostname.replace(/^\[|\]$/g, '');
  const host = advertiseHost ?? (bound === '0.0.0.0' || bound === '::' ? hostname() : undefined);
  if (host) url.hostname = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return url.origin;
}

/**
 * Keeps one instance registered with the orchestrator: registers on start (retrying with backoff while the
 * registry is unreachable, quietly after the first warning), heartbeats at the interval the registry asks for
 * with the instance's load, registers again when a heartbeat answers 404 (the registry restarted without its
 * state), and deregisters on stop. A registry that refuses the credential is reported once and asked again
 * slowly. Never throws into the service: discovery problems must not stop a healthy instance from serving.
 */
export function createInstanceRegistration(options: InstanceRegistrationOptions): InstanceRegistration {
  const instanceId = `${options.service}-${randomUUID().slice(0, 12)}`;
  const url = advertisedUrl(options.listenUrl, options.advertiseHost);
  const timeoutMs = options.timeoutMs ?? 2_000;
  const log = options.logger;
  const registry = options.orchestratorUrl;
  const controller = new AbortController();
  let isRegistered = false;
  let loop: Promise<void> | undefined;

  const body: RegistrationInput = {
    service: options.service,
    kind: options.kind ?? 'subgraph',
    instanceId,
    url,
    graphqlPath: options.graphqlPath ?? '/graphql',
    version: options.version ?? '0.0.0',
    startedAt: new Date().toISOString(),
    routes: options.routes ?? [],
    pid: process.pid,
    ...(options.sdl ? { sdl: options.sdl } : {}),
    ...(options.sdlHash ? { sdlHash: options.sdlHash } : {}),
    ...(options.slot ? { slot: options.slot } : {}),
  };

  const call = (path: string, method: string, payload?: unknown) =>
    fetch(new URL(path, registry), {
      method,
      headers: {
        authorization: `Bearer ${options.token}`,
        ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
      signal: AbortSignal.any([controller.signal, AbortSignal.timeout(timeoutMs)]),
    });

  /** Registers once; resolves with the heartbeat interval, or throws with a reason. */
  async function register(): Promise<number> {
    const response = await call(REGISTRY_API.instances, 'POST', body);
    if (response.status === 401 || response.status === 403) {
      throw Object.assign(new Error(`the registry refused the credential (HTTP ${response.status})`), {
        refused: true,
      });
    }
    if (!response.ok) throw new Error(`registration failed: HTTP ${response.status}`);
    const accepted = registrationAcceptedSchema.parse(await response.json());
    return accepted.heartbeatIntervalMs;
  }

  async function run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    let intervalMs = 0;
    while (!signal.aborted) {
      if (!isRegistered) {
        try {
          intervalMs = await register();
          isRegistered = true;
          failures = 0;
          log?.info({ instanceId, url, orchestrator: registry }, 'registered with the orchestrator');
        } catch (error) {
          if (signal.aborted) return;
          const refused = (error as { refused?: boolean }).refused === true;
          if (failures === 0 || refused) {
            log?.[refused ? 'error' : 'warn'](
              { orchestrator: registry, err: (error as Error).message },
              refused
                ? 'registration refused: check REGISTRY_TOKEN'
                : 'orchestrator not reachable: serving unregistered, will keep trying',
            );
          }
          failures++;
          await sleepUnlessAborted(
            refused ? 30_000 : Math.min(250 * 2 ** Math.min(failures, 5), 5_000),
            signal,
          );
          continue;
        }
      }
      await sleepUnlessAborted(intervalMs, signal);
      if (signal.aborted) return;
      try {
        const response = await call(REGISTRY_API.heartbeat(instanceId), 'PUT', { load: options.load() });
        if (response.status === 404) {
          log?.info({ instanceId }, 'the orchestrator no longer knows this instance: registering again');
          isRegistered = false;
        } else if (!response.ok) {
          throw new Error(`heartbeat: HTTP ${response.status}`);
        }
        failures = 0;
      } catch (error) {
        if (signal.aborted) return;
        if (failures++ === 0) {
          log?.warn({ err: (error as Error).message }, 'heartbeat failed: the orchestrator may be down');
        }
      }
    }
  }

  return {
    instanceId,
    url,
    registered: () => isRegistered,
    start() {
      if (loop) return;
      if (!options.token) {
        log?.info('REGISTRY_TOKEN is not set: not registering with the orchestrator');
        return;
      }
      loop = run(controller.signal);
    },
    async stop() {
      if (!loop) return;
      controller.abort();
      await loop;
      if (!isRegistered) return;
      isRegistered = false;
      try {
        await fetch(new URL(REGISTRY_API.instance(instanceId), registry), {
          method: 'DELETE',
          headers: { authorization: `Bearer ${options.token}` },
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        log?.warn({ err: (error as Error).message }, 'could not deregister: the registry will drop it');
      }
    },
  };
}
