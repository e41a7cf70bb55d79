import { randomBytes } from 'node:crypto';
import {
  createEventBus,
  createLogger,
  type EventBus,
  embeddedEventsFile,
  isServiceName,
  type Logger,
  loadConfigOrExit,
  onShutdownSignal,
  registryToken,
  serviceCredential,
} from '@aiva/shared';
import { type OrchestratorConfig, orchestratorEnvSchema } from './config.js';
import { createRegistryApp, type RegistryApp } from './registry/index.js';
import {
  createSupervisor,
  loadServiceManifest,
  parseStartArgs,
  StartArgsError,
  type Supervisor,
} from './supervisor/index.js';

const USAGE = `usage: aiva-orchestrator <command>
  start [--scale <service>=<n>]... [--runtime dist|source]
                    the registry and every service of services.yaml, each in its own process (pnpm start)
  dev [<service>...] [--scale <service>=<n>]...
                    the same from source, the named services (default: every subgraph) in watch mode, and the
                    supergraph composed live from what the instances serve (pnpm dev users)
  registry          the registry only: services register themselves or are found by DNS (production)
  token <service>   prints the registry credential of a service (REGISTRY_SECRET must be set)
  service-credential <service>
                    prints the credential a service gets service tokens from auth with: its SERVICE_CREDENTIAL
                    (SERVICE_SECRET, the one auth holds, must be set)
`;

/** Stops the process with a message (and the usage) on stderr; exit code 64 (EX_USAGE). */
function usageError(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}`);
  process.exit(64);
}

/** `--runtime dist|source` out of the arguments (the supervisor's start args do not know it). */
function takeRuntime(args: string[]): { runtime: 'dist' | 'source'; rest: string[] } {
  const rest: string[] = [];
  let runtime: 'dist' | 'source' = 'dist';
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = arg === '--runtime' ? args[++i] : arg.startsWith('--runtime=') ? arg.slice(10) : undefined;
    if (value === undefined) {
      rest.push(arg);
      continue;
    }
    if (value !== 'dist' && value !== 'source') usageError(`--runtime: "${value}" must be dist or source`);
    runtime = value;
  }
  return { runtime, rest };
}

/** The event bus the registry announces instance up/down on: NATS, else the machine's SQLite event log. */
function openBus(config: OrchestratorConfig, logger: Logger): Promise<EventBus> {
  return createEventBus({
    source: 'orchestrator',
    logger,
    ...(config.NATS_URL ? { natsUrl: config.NATS_URL } : { file: embeddedEventsFile(config) }),
  });
}

/** `registry`: the registry alone, for deployments whose services run elsewhere (compose, Kubernetes). */
async function runRegistry(config: OrchestratorConfig, logger: Logger): Promise<void> {
  const bus = await openBus(config, logger);
  const registry = await createRegistryApp({ config, logger, bus });
  await registry.listen();
  onShutdownSignal(async () => {
    await registry.close();
    await bus.close();
  }, logger);
}

/**
 * `start` / `dev`: the registry on ORCHESTRATOR_PORT, then every service of the manifest as a child process
 * that registers with it. A generated registry secret (unless REGISTRY_SECRET is set) hands each child the
 * credential of its own service. Ctrl-C stops the gateway first, the other services in reverse order, then the
 * registry.
 */
async function runSystem(
  command: 'start' | 'dev',
  args: string[],
  config: OrchestratorConfig,
  logger: Logger,
): Promise<void> {
  const manifest = config.SERVICES_FILE ? loadServiceManifest(config.SERVICES_FILE) : loadServiceManifest();
  const { runtime, rest } = takeRuntime(args);
  let parsed: ReturnType<typeof parseStartArgs>;
  try {
    parsed = parseStartArgs(
      rest,
      manifest.services.map((s) => s.name),
    );
  } catch (error) {
    if (error instanceof StartArgsError) usageError(error.message);
    throw error;
  }
  if (command === 'start' && parsed.services.length > 0) {
    usageError(
      `start runs every service; to watch ${parsed.services.join(', ')}, use: pnpm dev ${parsed.services.join(' ')}`,
    );
  }
  const dev = command === 'dev';
  const secret = config.REGISTRY_SECRET ?? randomBytes(32).toString('base64url');
  const registryConfig: OrchestratorConfig = {
    ...config,
    REGISTRY_SECRET: secret,
    ...(dev ? { SUPERGRAPH_MODE: 'live' as const } : {}),
  };
  const bus = await openBus(config, logger);
  let supervisor: Supervisor | undefined;
  const registry: RegistryApp = await createRegistryApp({
    config: registryConfig,
    logger,
    bus,
    supervisor: { status: () => supervisor?.status() ?? [] },
  });
  const orchestratorUrl = await registry.listen();
  const watch = dev
    ? parsed.services.length > 0
      ? parsed.services
      : manifest.services.filter((s) => s.kind === 'subgraph').map((s) => s.name)
    : [];
  supervisor = createSupervisor({
    manifest,
    runtime: dev ? 'source' : runtime,
    watch,
    scale: parsed.scale,
    env: process.env,
    registrySecret: secret,
    orchestratorUrl,
    waitReady: (slot, signal) => registry.registry.waitForSlot(slot, signal).then(() => undefined),
    onExit: (slot, info) => {
      registry.registry
        .removeSlot(slot, `process exited (${info.signal ?? `code ${info.code}`})`)
        .catch((error: unknown) => logger.error({ err: error, slot }, 'could not remove an exited instance'));
    },
    logger,
  });
  let stopping = false;
  onShutdownSignal(
    async () => {
      stopping = true;
      await supervisor?.stop();
      await registry.close();
      await bus.close();
    },
    logger,
    20_000,
  );
  await supervisor.start();
  if (stopping) return;
  const gateway = manifest.services.find((s) => s.kind === 'gateway');
  const host = config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST;
  process.stdout.write(
    `\nAIVA is up. GraphQL: http://${host}:${gateway?.port ?? 3000}/graphql   status: ${orchestratorUrl}/\n` +
      (dev ? `Watching ${watch.join(', ')}: edits are served without restarting the gateway.\n` : '') +
      '\n',
  );
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (command === 'token') {
    const service = args[0];
    const secret = process.env.REGISTRY_SECRET;
    if (!service) usageError('token: which service?');
    if (!secret) usageError('token: REGISTRY_SECRET is not set');
    process.stdout.write(`${registryToken(secret, service)}\n`);
    return;
  }
  if (command === 'service-credential') {
    const service = args[0];
    const secret = process.env.SERVICE_SECRET;
    if (!service) usageError('service-credential: which service?');
    if (!isServiceName(service)) usageError(`service-credential: "${service}" is not a service name`);
    if (!secret) usageError('service-credential: SERVICE_SECRET is not set');
    if (secret.length < 32) usageError('service-credential: SERVICE_SECRET must be at least 32 characters');
    process.stdout.write(`${serviceCredential(secret, service)}\n`);
    return;
  }
  if (command !== 'start' && command !== 'dev' && command !== 'registry') {
    usageError(command ? `unknown command "${command}"` : 'which command?');
  }
  const config = loadConfigOrExit(orchestratorEnvSchema);
  const logger = createLogger('orchestrator', { level: config.LOG_LEVEL });
  try {
    if (command === 'registry') await runRegistry(config, logger);
    else await runSystem(command, args, config, logger);
  } catch (error) {
    logger.fatal({ err: error }, 'the orchestrator failed to start');
    process.exit(1);
  }
}

await main(process.argv.slice(2));
