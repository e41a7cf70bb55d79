import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, type Logger } from '@aiva/shared';
import { childCommand, type RunMode } from './child-command.js';
import { childEnvironment } from './child-environment.js';
import { type LineSink, linePrefix } from './line-prefixer.js';
import { ManagedProcess, type ProcessExitInfo, type SlotOutcome } from './managed-process.js';
import type { ServiceDefinition, ServiceManifest } from './manifest.js';
import { probeHost, type WaitReady, waitForHealthy } from './readiness.js';
import { type RestartPolicy, restartPolicy } from './restart-policy.js';
import { MAX_INSTANCES } from './start-args.js';
import type { ProcessStatusView } from './status.js';

/** How long the ordered start waits for one service to be ready before starting the next ones anyway. */
export const DEFAULT_READY_TIMEOUT_MS = 60_000;

export interface SupervisorOptions {
  /** The services, in start order (`loadServiceManifest()`). */
  manifest: ServiceManifest;
  /** `dist` (default): built entries; `source`: TypeScript entries through tsx. */
  runtime?: 'dist' | 'source';
  /** Services run under `tsx watch` (restarting on changes to their source and `watch` files). */
  watch?: readonly string[];
  /** Instances per service (default 1, at most 16). Instance 1 gets the service's port, the others port 0. */
  scale?: Readonly<Record<string, number>>;
  /** The children's base environment; default this process's. REGISTRY_SECRET never reaches a child. */
  env?: NodeJS.ProcessEnv;
  /** Each child gets `REGISTRY_TOKEN = registryToken(registrySecret, service)`; unset: no token. */
  registrySecret?: string;
  /** Each child gets it as ORCHESTRATOR_URL; unset: whatever `env` says. */
  orchestratorUrl?: string;
  /**
   * Resolves when a slot is ready (the entry point passes the registry's `waitForSlot`). Default: polls
   * `http://<HOST>:<port>/health` of fixed-port instances; an instance on port 0 counts as ready once started.
   */
  waitReady?: WaitReady;
  /** Told of every process that ended (the entry point removes the slot from the registry at once). */
  onExit?: (slot: string, info: ProcessExitInfo) => void;
  logger?: Logger;
  /** Where the children's prefixed output lines go; default process.stdout. */
  output?: LineSink;
  /** Overrides of DEFAULT_RESTART_POLICY. */
  restart?: Partial<RestartPolicy>;
  /** How long the ordered start waits for a service before going on; default DEFAULT_READY_TIMEOUT_MS. */
  readyTimeoutMs?: number;
  /** tsx's command line script for watch mode; default resolved from the manifest root's node_modules. */
  tsxCli?: string;
}

/** One process slot as planned from the manifest and the options. */
export interface SlotPlan {
  service: ServiceDefinition;
  /** `users#2`; also the child's AIVA_INSTANCE_SLOT. */
  slot: string;
  /** 1-based. */
  instance: number;
  /** Output prefix: the service name when it runs once, else the slot. */
  label: string;
  /** The port it is told to listen on (0: the OS picks one). */
  port: number;
  mode: RunMode;
}

export interface Supervisor {
  /** Every slot, in start order. */
  readonly slots: readonly SlotPlan[];
  /**
   * Starts the services in manifest order, the instances of one service in parallel, each service once the
   * previous one is ready (or given up on: a crash loop is reported and the next services start anyway).
   * Resolves with the status once every service was started.
   */
  start(): Promise<ProcessStatusView[]>;
  /**
   * Stops everything: the gateway(s) first, then the other services in reverse start order, each by SIGTERM
   * and SIGKILL after `stopTimeoutMs`. No restarts from then on. Resolves once every process is gone.
   */
  stop(): Promise<void>;
  /** Every slot's state, in start order. */
  status(): ProcessStatusView[];
}

/** Thrown for options that do not fit the manifest (unknown service, bad scale, a port variable, no build). */
export class SupervisorOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SupervisorOptionsError';
  }
}

/** A supervisor of the manifest's services, each as its own Node process. Nothing runs until `start()`. */
export function createSupervisor(options: SupervisorOptions): Supervisor {
  const { manifest } = options;
  const env = options.env ?? process.env;
  const policy = restartPolicy(options.restart);
  const logger = options.logger ?? createLogger('supervisor');
  const output = options.output ?? process.stdout;
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const slots = planSlots(options, env);
  const width = Math.max(...slots.map((plan) => plan.label.length));
  const waitReady = options.waitReady ?? healthWaiter(slots, env.HOST);
  const tsxCli = options.tsxCli;

  const processes = new Map<string, ManagedProcess>();
  for (const plan of slots) {
    const command = childCommand(plan.service, plan.mode, {
      rootDir: manifest.rootDir,
      ...(tsxCli ? { tsxCli } : {}),
    });
    processes.set(
      plan.slot,
      new ManagedProcess({
        service: plan.service.name,
        slot: plan.slot,
        command,
        env: childEnvironment({
          base: env,
          service: plan.service,
          slot: plan.slot,
          port: plan.port,
          registrySecret: options.registrySecret,
          orchestratorUrl: options.orchestratorUrl,
        }),
        policy,
        prefix: linePrefix(plan.label, width),
        output,
        logger,
        waitReady,
        onExit: options.onExit ?? (() => {}),
      }),
    );
  }
  const processesOf = (service: ServiceDefinition) =>
    slots.filter((plan) => plan.service === service).map((plan) => processes.get(plan.slot)!);

  let starting: Promise<ProcessStatusView[]> | null = null;
  let stopping: Promise<void> | null = null;

  async function startInOrder(): Promise<ProcessStatusView[]> {
    for (const service of manifest.services) {
      if (stopping) break;
      const instances = processesOf(service);
      logger.info(
        { instanceOf: service.name, instances: instances.length },
        `starting ${service.name} (${instances.length} instance${instances.length === 1 ? '' : 's'})`,
      );
      const outcomes = await Promise.all(instances.map((managed) => startOne(managed)));
      const given = outcomes.filter((outcome) => outcome !== 'ready' && outcome !== 'stopped');
      if (given.length > 0 && !stopping) {
        logger.error(
          { instanceOf: service.name, outcomes },
          `${service.name} is not ready (${given.join(', ')}): starting the next services anyway`,
        );
      }
    }
    return status();
  }

  async function startOne(managed: ManagedProcess): Promise<SlotOutcome | 'not ready in time'> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'not ready in time'>((resolve) => {
      timer = setTimeout(() => resolve('not ready in time'), readyTimeoutMs);
    });
    const outcome = await Promise.race([managed.start(), timedOut]);
    clearTimeout(timer);
    if (outcome === 'not ready in time') managed.noteNotReady(`not ready within ${readyTimeoutMs} ms`);
    return outcome;
  }

  async function stopInOrder(): Promise<void> {
    const order = [
      ...manifest.services.filter((service) => service.kind === 'gateway').reverse(),
      ...manifest.services.filter((service) => service.kind !== 'gateway').reverse(),
    ];
    for (const service of order) {
      await Promise.all(processesOf(service).map((managed) => managed.stop()));
    }
    logger.info('every service stopped');
  }

  function status(): ProcessStatusView[] {
    return slots.map((plan) => processes.get(plan.slot)!.status());
  }

  return {
    slots,
    start() {
      starting ??= startInOrder();
      return starting;
    },
    stop() {
      stopping ??= stopInOrder();
      return stopping;
    },
    status,
  };
}

/** The slots of every service: instances, ports, labels and how each runs. Validates the options against them. */
function planSlots(options: SupervisorOptions, env: NodeJS.ProcessEnv): SlotPlan[] {
  const { manifest } = options;
  const names = new Set(manifest.services.map((service) => service.name));
  const known = [...names].join(', ');
  for (const [name, count] of Object.entries(options.scale ?? {})) {
    if (!names.has(name))
      throw new SupervisorOptionsError(`scale: unknown service "${name}" (known: ${known})`);
    if (!Number.isInteger(count) || count < 1 || count > MAX_INSTANCES) {
      throw new SupervisorOptionsError(
        `scale: ${name}=${count} must be a whole number from 1 to ${MAX_INSTANCES}`,
      );
    }
  }
  for (const name of options.watch ?? []) {
    if (!names.has(name))
      throw new SupervisorOptionsError(`watch: unknown service "${name}" (known: ${known})`);
  }

  const slots: SlotPlan[] = [];
  for (const service of manifest.services) {
    const count = options.scale?.[service.name] ?? 1;
    const mode: RunMode = options.watch?.includes(service.name) ? 'watch' : (options.runtime ?? 'dist');
    if (mode === 'dist') requireBuilt(manifest.rootDir, service);
    const firstPort = portFromEnvironment(service, env);
    for (let instance = 1; instance <= count; instance++) {
      const slot = `${service.name}#${instance}`;
      slots.push({
        service,
        slot,
        instance,
        label: count === 1 ? service.name : slot,
        port: instance === 1 ? firstPort : 0,
        mode,
      });
    }
  }
  return slots;
}

/** The first instance's port: the service's port variable when the environment sets it, else the manifest's. */
function portFromEnvironment(service: ServiceDefinition, env: NodeJS.ProcessEnv): number {
  const raw = env[service.portVariable]?.trim();
  if (!raw) return service.port;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SupervisorOptionsError(`${service.portVariable}: must be a port number (0-65535)`);
  }
  return port;
}

function requireBuilt(rootDir: string, service: ServiceDefinition): void {
  const entry = join(rootDir, service.dir, service.entry);
  if (!existsSync(entry)) {
    throw new SupervisorOptionsError(`${service.name}: ${entry} does not exist (build first: pnpm build)`);
  }
}

/** The default readiness: `/health` answering 2xx on the slot's fixed port; port 0 counts as ready at once. */
function healthWaiter(slots: readonly SlotPlan[], host: string | undefined): WaitReady {
  const ports = new Map(slots.map((plan) => [plan.slot, plan.port]));
  return async (slot, signal) => {
    const port = ports.get(slot);
    if (!port) return;
    await waitForHealthy(`http://${probeHost(host)}:${port}/health`, signal);
  };
}
