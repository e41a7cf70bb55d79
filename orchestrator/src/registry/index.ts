import {
  connectRedis,
  type EventBus,
  installHttpErrorHandlers,
  isRedisUnavailable,
  type Logger,
  registerSecurity,
  sendHttpError,
} from '@aiva/shared';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify';
import type { OrchestratorConfig } from '../config.js';
import { createComposer } from './composition.js';
import { type RegistrySettings, type RegistryTuning, recordTtlMs, registrySettings } from './defaults.js';
import { type DnsDiscovery, startDnsDiscovery } from './dns-discovery.js';
import { registerRegistryApi } from './http.js';
import { createRegistryMetrics, type RegistryMetrics } from './metrics.js';
import { type Prober, startProber } from './probes.js';
import { Registry } from './registry.js';
import { type Replica, startReplica } from './replica.js';
import type { SupervisorStatusProvider } from './status.js';
import { registerStatusPage } from './status-page.js';
import type { RegistryStore } from './store.js';
import { createMemoryRegistryStore } from './store-memory.js';
import { createRedisRegistryStore } from './store-redis.js';

export type {
  CompositionAttempt,
  CompositionSource,
  CompositionStatus,
  ServedSupergraph,
  SupergraphMode,
} from './composition.js';
export { DEFAULT_REGISTRY_TUNING, type RegistrySettings, type RegistryTuning } from './defaults.js';
export type { InstanceRecord } from './instance.js';
export { InstanceIdTakenError, Registry } from './registry.js';
export type { RouteConflict } from './routing-table.js';
export type { ProcessStatusView, RegistryStatus, ServiceStatus, SupervisorStatusProvider } from './status.js';
export type { RegistryStore } from './store.js';
export { createMemoryRegistryStore } from './store-memory.js';
export { createRedisRegistryStore } from './store-redis.js';

/** The store `config` asks for: Redis with REDIS_URL (keys under ORCHESTRATOR_REDIS_PREFIX), else memory. */
export async function openRegistryStore(
  config: Pick<OrchestratorConfig, 'REDIS_URL' | 'ORCHESTRATOR_REDIS_PREFIX' | 'INSTANCE_TTL_MS'>,
  logger?: Logger,
): Promise<RegistryStore> {
  if (!config.REDIS_URL) return createMemoryRegistryStore();
  const client = await connectRedis({ url: config.REDIS_URL, ...(logger ? { logger } : {}) });
  return createRedisRegistryStore({
    client,
    prefix: config.ORCHESTRATOR_REDIS_PREFIX,
    recordTtlMs: recordTtlMs(config.INSTANCE_TTL_MS),
    ownsClient: true,
  });
}

export interface RegistryAppOptions {
  config: OrchestratorConfig;
  logger: Logger;
  /** Where instance up/down events go (information only). */
  bus?: EventBus;
  /** A store to use (closed with the app only when the app opened it); default `openRegistryStore(config)`. */
  store?: RegistryStore;
  /** The process supervisor, for the status page. */
  supervisor?: SupervisorStatusProvider;
  /** Timings that are not environment variables (tests shorten them). */
  tuning?: Partial<RegistryTuning>;
}

export interface RegistryApp {
  app: FastifyInstance;
  registry: Registry;
  store: RegistryStore;
  metrics: RegistryMetrics;
  settings: RegistrySettings;
  /** Listens on HOST:ORCHESTRATOR_PORT; resolves with the base URL. */
  listen(): Promise<string>;
  /** Stops the loops, ends long-polls, closes HTTP and (when the app opened it) the store. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * The orchestrator's registry as one fastify app: the registry API, `/health`, `/ready`, `/metrics` and the
 * status page, with the probes, DNS discovery, replica sync and TTL sweep running until `close`. The state is
 * recovered from the store at start (Redis: a restarted orchestrator has its instances back).
 */
export async function createRegistryApp(options: RegistryAppOptions): Promise<RegistryApp> {
  const { config, logger } = options;
  const settings = registrySettings(config, options.tuning);
  const ownsStore = options.store === undefined;
  const store = options.store ?? (await openRegistryStore(config, logger));
  const startedAt = new Date();

  let registry: Registry | undefined;
  const metrics = createRegistryMetrics(() =>
    (registry?.records() ?? []).map((record) => ({ record, view: registry!.get(record.instanceId)! })),
  );
  const composer = createComposer({
    mode: config.SUPERGRAPH_MODE,
    supergraphPath: config.SUPERGRAPH_PATH,
    configPath: config.SUPERGRAPH_CONFIG,
    logger,
    onOutcome: (outcome) => metrics.composition(outcome),
  });
  registry = new Registry({
    store,
    composer,
    settings,
    logger,
    ...(options.bus ? { bus: options.bus } : {}),
  });
  await registry.reload();
  // Started empty (no Redis, or nothing in it): instances that ran before this start may still be registering again.
  if (registry.list().length === 0) registry.startRebuilding();
  if (!config.REGISTRY_SECRET) logger.warn('REGISTRY_SECRET is not set: every registration will be refused');

  const replica: Replica = startReplica({ registry, store, settings, logger });
  const prober: Prober = startProber({ registry, settings, lease: replica, logger });
  const dns: DnsDiscovery = startDnsDiscovery({
    targets: config.DISCOVERY_DNS,
    servers: config.DNS_SERVERS,
    refreshMs: config.DNS_REFRESH_MS,
    registry,
    settings,
    lease: replica,
    logger,
  });
  // Instances recovered from the store are probed at once, not a whole interval later.
  for (const record of registry.records()) prober.probeNow(record.instanceId);

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: settings.bodyLimitBytes,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  await registerSecurity(app, { corsOrigins: [] });
  installHttpErrorHandlers(app, {
    bodyLimit: settings.bodyLimitBytes,
    logger,
    answerFirst: storeOutageAnswer(logger),
  });
  registerRegistryApi(app, {
    registry,
    store,
    prober,
    metrics,
    settings,
    secret: config.REGISTRY_SECRET,
    status: {
      registry,
      storeKind: store.kind,
      startedAt,
      leader: () => replica.held(),
      registrationOpen: config.REGISTRY_SECRET !== undefined,
      supervisor: options.supervisor,
    },
    logger,
  });
  registerStatusPage(app);
  await app.ready();

  let closing: Promise<void> | undefined;
  return {
    app,
    registry,
    store,
    metrics,
    settings,
    async listen() {
      await app.listen({ port: config.ORCHESTRATOR_PORT, host: config.HOST });
      const address = app.server.address();
      const port = typeof address === 'object' && address ? address.port : config.ORCHESTRATOR_PORT;
      const host = config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST;
      const url = `http://${host}:${port}`;
      logger.info(
        { url, store: store.kind, mode: config.SUPERGRAPH_MODE },
        'orchestrator registry listening',
      );
      return url;
    },
    close() {
      closing ??= (async () => {
        await dns.stop();
        await prober.stop();
        await replica.stop();
        registry.stop();
        await app.close();
        if (ownsStore) await store.close();
      })();
      return closing;
    },
  };
}

/**
 * A request the store cannot serve now (Redis down) answers 503 with a clear error, and the outage is logged once
 * when it starts (the replica logs when the store is reachable again), not once per request: instances keep
 * heartbeating through it and register again if they have to.
 */
function storeOutageAnswer(logger: Logger) {
  let loggedAt = Number.NEGATIVE_INFINITY;
  return (error: unknown, reply: FastifyReply): FastifyReply | undefined => {
    if (!isRedisUnavailable(error)) return undefined;
    if (Date.now() - loggedAt > 60_000) {
      loggedAt = Date.now();
      logger.warn(
        { err: (error as Error).message },
        'registry store unavailable: answering 503 until it is back (logged at most once a minute)',
      );
    }
    return sendHttpError(
      reply,
      503,
      'The registry store is unavailable right now: try again shortly',
      'INTERNAL_SERVER_ERROR',
      { reason: 'DEPENDENCY_UNAVAILABLE' },
    );
  };
}
