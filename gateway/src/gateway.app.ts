import {
  type AccessTokenVerifier,
  ApolloCacheAdapter,
  type Cache,
  cacheRateLimitStore,
  createCache,
  createDependencyMonitor,
  createGraphQLHttpServer,
  createLogger,
  createMemoryCache,
  createRoutingFollower,
  createTrafficReporter,
  type DependencyReporter,
  discoveryFromEnv,
  embeddedCacheFile,
  type GraphQLHttpServer,
  introspectionOf,
  type Logger,
  operationLimitsOf,
  type ReadinessCheck,
  type ReadinessDetail,
  type RequestContext,
  type RoutingFollower,
  rateLimitExceeded,
  readSupergraph,
  redisTimeoutsOf,
  ServiceRouter,
  type SubgraphEndpoint,
  serverTimeoutsOf,
  serviceTokenVerifier,
  sessionRevocations,
  staticSubgraphUrls,
  subgraphsOf,
  verifiedViewer,
} from '@aiva/shared';
import { ApolloGateway } from '@apollo/gateway';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import { Agent } from 'undici';
import { registerCompression } from './compression.js';
import type { GatewayConfig } from './config.js';
import { mcpCatalogs } from './mcp/catalog.js';
import { type McpHttp, registerMcpHttp } from './mcp/http.js';
import { createMcpServer } from './mcp/server.js';
import { loadOperations } from './operations.js';
import { createQueryPlanCache, warmQueryPlans } from './plan-warmer.js';
import { RoutedDataSource } from './routed-data-source.js';
import { registerServiceRoutes } from './service-routes.js';
import { orchestratorSupergraph } from './supergraph-source.js';

export interface GatewayApp {
  server: GraphQLHttpServer;
  /** The subgraphs of the supergraph being served, with their static routing URLs. */
  readonly subgraphs: SubgraphEndpoint[];
  /** Picks subgraph instances (routing table, or the static URLs). */
  router: ServiceRouter;
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface GatewayAppOptions {
  config: GatewayConfig;
  logger?: Logger;
  /**
   * The supergraph served until (and unless) the orchestrator provides one; default: read from SUPERGRAPH_PATH
   * or the committed supergraph.graphql.
   */
  supergraphSdl?: string;
  /**
   * Where each subgraph is while no routing table was ever received; default: the supergraph's routing URLs
   * with SUBGRAPH_<NAME>_URL overrides.
   */
  subgraphUrls?: Record<string, string>;
  /**
   * Follow the orchestrator at ORCHESTRATOR_URL (routing table, supergraph, registration, traffic reports);
   * default true. Tests that compose a gateway in one process turn it off and route to `subgraphUrls` only.
   */
  discovery?: boolean;
  /**
   * Verifies access tokens; default: auth's JWKS at AUTH_JWKS_URL (fetched on the first token or `/ready` probe,
   * served stale while auth cannot be reached, see JWKS_MAX_STALE_SECONDS).
   */
  verifier?: AccessTokenVerifier;
  /** Prefix of every key in the Redis cache (default `aiva:`); tests sharing a Redis use one per run. */
  cacheKeyPrefix?: string;
}

/** The gateway's version, as MCP clients see it. */
const GATEWAY_VERSION = '0.1.0';

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');

/** The origins of the gateway's own port on the loopback names (a local page of the gateway itself). */
function loopbackOrigins(port: number): string[] {
  return ['localhost', '127.0.0.1', '[::1]'].map((host) => `http://${host}:${port}`);
}

/** Operational routes: probes and scrapers are never rate limited. */
const UNLIMITED_ROUTES = new Set(['/health', '/ready', '/metrics']);

/** The rate limit bucket of a request: the verified user when it carries a valid token, else its address. */
export function rateLimitKey(request: FastifyRequest): string {
  const viewer = verifiedViewer(request);
  return viewer ? `user:${viewer.userId}` : `ip:${request.ip}`;
}

/**
 * Fixed-window rate limits per client on every route but the operational ones, counted in `cache` (shared by
 * all gateway instances when it is Redis). A cache failure (Redis down, or slower than REDIS_COMMAND_TIMEOUT_MS)
 * lets requests through rather than failing them: each is counted on `health` (`rate_limit`).
 */
async function registerRateLimit(
  app: FastifyInstance,
  options: { cache: Cache; max: number; windowSeconds: number; health: DependencyReporter },
): Promise<void> {
  await app.register(rateLimit, {
    global: true,
    max: options.max,
    timeWindow: options.windowSeconds * 1000,
    store: cacheRateLimitStore({
      cache: options.cache,
      keyPrefix: 'ratelimit:gateway:',
      onError: () => options.health.degraded('rate_limit'),
    }),
    keyGenerator: rateLimitKey,
    allowList: (request) => UNLIMITED_ROUTES.has(request.routeOptions.url ?? ''),
    skipOnError: true,
    errorResponseBuilder: (_request, context) => rateLimitExceeded(context),
  });
}

/**
 * How long one instance of a subgraph may take to answer `{ __typename }` on `/ready`: below the hard checks'
 * 2 s (and the orchestrator's 1 s probe), so one instance that hangs does not make the gateway unready.
 */
const INSTANCE_PROBE_TIMEOUT_MS = 750;

/** Whether one instance answers `{ __typename }`: the cheapest proof that it serves. */
async function instanceAnswers(graphqlUrl: string): Promise<boolean> {
  try {
    const response = await fetch(graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query":"{ __typename }"}',
      signal: AbortSignal.timeout(INSTANCE_PROBE_TIMEOUT_MS),
    });
    const body = (await response.json().catch(() => ({}))) as { data?: { __typename?: string } };
    return response.ok && body.data?.__typename === 'Query';
  } catch {
    return false;
  }
}

/**
 * A subgraph is there when at least one of its instances answers (the router sends requests to those): the
 * check passes then, and names the instances that do not answer, which `/ready` reports under `degraded`
 * (`users/<instance id>`). It fails when no instance answers, or none is known.
 */
function subgraphAnswers(name: string, router: ServiceRouter): ReadinessCheck {
  return {
    name,
    check: async (): Promise<ReadinessDetail> => {
      const endpoints = router.endpoints(name);
      if (endpoints.length === 0) throw new Error(`no instance of ${name} is known`);
      const answers = await Promise.all(endpoints.map((endpoint) => instanceAnswers(endpoint.graphqlUrl)));
      if (!answers.includes(true)) throw new Error(`no instance of ${name} answers { __typename }`);
      return { down: endpoints.filter((_, i) => !answers[i]).map((endpoint) => endpoint.id) };
    },
  };
}

export async function createGatewayApp(options: GatewayAppOptions): Promise<GatewayApp> {
  const { config } = options;
  const logger = options.logger ?? createLogger('gateway', { level: config.LOG_LEVEL });
  const fallbackSdl = options.supergraphSdl ?? readSupergraph(config.SUPERGRAPH_PATH);
  const discovery = options.discovery ?? true;
  const staticUrls = {
    ...Object.fromEntries(subgraphsOf(fallbackSdl).map((s) => [s.name, s.url])),
    ...(options.subgraphUrls ?? staticSubgraphUrls(process.env, config.SUPERGRAPH_PATH)),
  };
  const follower: RoutingFollower | undefined = discovery
    ? createRoutingFollower({ orchestratorUrl: config.ORCHESTRATOR_URL, logger })
    : undefined;
  const router = new ServiceRouter({ ...(follower ? { routing: follower } : {}), fallback: staticUrls });
  const dispatcher = new Agent({
    keepAliveTimeout: 30_000,
    connectTimeout: Math.min(config.SUBGRAPH_TIMEOUT_MS, 5_000),
  });
  let servedSdl = fallbackSdl;
  let mcpHttp: McpHttp | undefined;
  // The states of Redis and of auth's keys, shared by their adapters and /ready: one log line per change,
  // aiva_dependency_up and aiva_degraded_requests_total on /metrics.
  const dependencies = createDependencyMonitor(logger);
  const cacheHealth = dependencies.reporter('cache');

  // A soft dependency: the gateway starts and serves without Redis (connecting in the background), every
  // command bounded by REDIS_COMMAND_TIMEOUT_MS; rate limits, persisted queries and revocation checks fail open.
  const cache = await createCache({
    logger,
    ...(config.REDIS_URL ? { redisUrl: config.REDIS_URL } : { file: embeddedCacheFile(config) }),
    ...(options.cacheKeyPrefix ? { keyPrefix: options.cacheKeyPrefix } : {}),
    redis: redisTimeoutsOf(config),
    health: cacheHealth,
  });
  // Counters get a bounded cache of their own (in memory, or their own key prefix of the SQLite file), so that
  // persisted queries cannot evict them (and reset them). Redis does not evict (no maxmemory policy assumed).
  const limiterCache =
    cache.kind === 'memory'
      ? createMemoryCache({ maxEntries: 100_000 })
      : cache.kind === 'sqlite'
        ? await createCache({
            file: embeddedCacheFile(config),
            keyPrefix: 'aiva:limits:',
            maxEntries: 100_000,
          })
        : cache;
  // Auth's keys, kept verifying while auth cannot be reached; tokens of sessions auth has ended are refused
  // before they expire (auth marks them in the shared cache).
  const tokens = serviceTokenVerifier({
    config,
    ...(options.verifier ? { given: options.verifier } : {}),
    revocations: sessionRevocations(cache),
    dependencies,
    logger,
  });
  const verifier = tokens.verifier;

  // On /metrics once the server (and its registry) exists.
  const sharedFetches = new Counter({
    name: 'aiva_gateway_subgraph_fetches_shared_total',
    help: 'Subgraph fetches that joined an identical one in flight instead of sending their own',
    labelNames: ['subgraph'],
    registers: [],
  });
  follower?.start();
  const planCache = createQueryPlanCache(config.QUERY_PLAN_CACHE_MIB);
  const gateway = new ApolloGateway({
    queryPlannerConfig: { cache: planCache },
    supergraphSdl: orchestratorSupergraph({
      ...(follower ? { routing: follower } : {}),
      orchestratorUrl: config.ORCHESTRATOR_URL,
      fallbackSdl,
      logger,
      onServe: (sdl) => {
        const changed = sdl !== servedSdl;
        servedSdl = sdl;
        // Tools follow the supergraph: clients holding a stream hear of it.
        if (changed) mcpHttp?.notifyToolsChanged();
      },
    }),
    buildService: ({ name }) =>
      new RoutedDataSource({
        name,
        router,
        dispatcher,
        timeoutMs: config.SUBGRAPH_TIMEOUT_MS,
        dedupe: config.DEDUPE_SUBGRAPH_FETCHES,
        onShared: () => sharedFetches.inc({ subgraph: name }),
      }),
  });
  // The stored operations' plans are made before their first request, again for each new supergraph.
  const stored = loadOperations();
  const mcpCatalog = mcpCatalogs(stored.operations, config.MCP_MUTATIONS);
  for (const problem of stored.problems) logger.warn({ problem }, 'stored operation skipped');
  gateway.onSchemaLoadOrUpdate(() => {
    void warmQueryPlans({ gateway, cache: planCache, operations: stored.operations, logger }).then(
      (planned) => logger.debug({ planned }, 'query plans warmed'),
    );
  });
  let registrationId = 'gateway';
  const reporter = createTrafficReporter({
    router,
    orchestratorUrl: config.ORCHESTRATOR_URL,
    token: discovery ? config.REGISTRY_TOKEN : undefined,
    service: 'gateway',
    reporter: () => registrationId,
    logger,
  });
  const server = await createGraphQLHttpServer<RequestContext>({
    name: 'gateway',
    logger,
    apollo: {
      gateway,
      // Automatic persisted queries, kept in the cache port (Redis when REDIS_URL is set), each at most
      // APQ_MAX_QUERY_BYTES (see operationLimits).
      cache: new ApolloCacheAdapter(cache, 'gateway:apq:', cacheHealth),
      persistedQueries: { ttl: config.APQ_TTL_SECONDS },
    },
    // Checked here and again in every subgraph (GRAPHQL_MAX_*), before any subgraph is called.
    operationLimits: operationLimitsOf(config),
    introspection: introspectionOf(config),
    corsOrigins: config.CORS_ORIGINS,
    bodyLimitBytes: config.BODY_LIMIT_BYTES,
    // The budget of a request (GRAPHQL_REQUEST_TIMEOUT_MS; its subgraph requests get what is left) and the
    // HTTP timeouts.
    timeouts: serverTimeoutsOf(config),
    dependencies,
    // Bad tokens fail with UNAUTHENTICATED (HTTP 401) before any subgraph is called.
    auth: verifier,
    trustProxy: config.TRUST_PROXY.length > 0 ? config.TRUST_PROXY : false,
    // Both must see every route as it is added.
    plugins: async (app: FastifyInstance) => {
      // Responses of COMPRESSION_THRESHOLD_BYTES or more in br or gzip (never the service routes).
      await registerCompression(app, { thresholdBytes: config.COMPRESSION_THRESHOLD_BYTES });
      if (config.RATE_LIMIT_MAX > 0) {
        await registerRateLimit(app, {
          cache: limiterCache,
          max: config.RATE_LIMIT_MAX,
          windowSeconds: config.RATE_LIMIT_WINDOW_SECONDS,
          health: cacheHealth,
        });
      }
    },
    configure: async (app, { tokenCheck }) => {
      // MCP on the gateway's port, over the supergraph it serves, as the caller of each request.
      mcpHttp = await registerMcpHttp(app, {
        tokenCheck,
        serverFor: (execute) =>
          createMcpServer({
            catalog: () => mcpCatalog(servedSdl),
            execute,
            mutations: config.MCP_MUTATIONS,
            discovery: introspectionOf(config),
            maxResultChars: config.MCP_MAX_RESULT_CHARS,
            version: GATEWAY_VERSION,
          }),
        allowedOrigins: [...config.CORS_ORIGINS, ...loopbackOrigins(config.GATEWAY_PORT)],
        allowedHosts:
          config.MCP_ALLOWED_HOSTS.length > 0
            ? config.MCP_ALLOWED_HOSTS
            : isLoopback(config.HOST)
              ? ['localhost', '127.0.0.1', '[::1]']
              : [],
      });
      if (follower) {
        await registerServiceRoutes(app, {
          router,
          routing: follower,
          tokenCheck,
          timeoutMs: config.SUBGRAPH_TIMEOUT_MS,
          logger,
        });
      }
    },
    // Ready with a schema (it serves one from the start) and an answering instance of each subgraph; the
    // instances that do not answer, the cache and auth's keys are reported under `degraded`.
    readiness: () => [
      ...subgraphsOf(servedSdl).map((s) => subgraphAnswers(s.name, router)),
      { name: 'cache', soft: true, check: () => cache.ping() },
      ...tokens.readiness,
    ],
    ...(discovery ? { discovery: { ...discoveryFromEnv(config), kind: 'gateway' as const } } : {}),
    onClose: [
      () => reporter.stop(),
      async () => follower?.stop(),
      () => dispatcher.close(),
      () => cache.close(),
      ...(limiterCache === cache ? [] : [() => limiterCache.close()]),
    ],
  });
  server.metrics.registry.registerMetric(sharedFetches);
  return {
    server,
    router,
    get subgraphs() {
      return subgraphsOf(servedSdl).map((s) => ({ ...s, url: staticUrls[s.name] ?? s.url }));
    },
    async listen() {
      const url = await server.listen({ port: config.GATEWAY_PORT, host: config.HOST });
      registrationId = server.registration?.instanceId ?? 'gateway';
      reporter.start();
      return url;
    },
    close: () => server.close(),
  };
}
