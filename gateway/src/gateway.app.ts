import {
  type AccessTokenVerifier,
  ApolloCacheAdapter,
  type Cache,
  cacheRateLimitStore,
  createCache,
  createGraphQLHttpServer,
  createLogger,
  createMemoryCache,
  createRemoteVerifier,
  createRoutingFollower,
  createTrafficReporter,
  discoveryFromEnv,
  embeddedCacheFile,
  type GraphQLHttpServer,
  introspectionOf,
  type Logger,
  operationLimitsOf,
  type ReadinessCheck,
  type RequestContext,
  type RoutingFollower,
  rateLimitExceeded,
  readSupergraph,
  revocationAwareVerifier,
  routedCall,
  ServiceRouter,
  type SubgraphEndpoint,
  sessionRevocations,
  staticSubgraphUrls,
  subgraphsOf,
  verifiedViewer,
} from '@aiva/shared';
import { ApolloGateway } from '@apollo/gateway';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Agent } from 'undici';
import type { GatewayConfig } from './config.js';
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
  /** Verifies access tokens; default: auth's JWKS at AUTH_JWKS_URL (fetched on the first token, not before). */
  verifier?: AccessTokenVerifier;
  /** Prefix of every key in the Redis cache (default `aiva:`); tests sharing a Redis use one per run. */
  cacheKeyPrefix?: string;
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
 * all gateway instances when it is Redis). A cache failure lets requests through rather than failing them.
 */
async function registerRateLimit(
  app: FastifyInstance,
  options: { cache: Cache; max: number; windowSeconds: number },
): Promise<void> {
  await app.register(rateLimit, {
    global: true,
    max: options.max,
    timeWindow: options.windowSeconds * 1000,
    store: cacheRateLimitStore({ cache: options.cache, keyPrefix: 'ratelimit:gateway:' }),
    keyGenerator: rateLimitKey,
    allowList: (request) => UNLIMITED_ROUTES.has(request.routeOptions.url ?? ''),
    skipOnError: true,
    errorResponseBuilder: (_request, context) => rateLimitExceeded(context),
  });
}

/** Asks one instance of a subgraph for `{ __typename }`: the cheapest proof that the subgraph answers. */
function subgraphAnswers(name: string, router: ServiceRouter, dispatcherTimeoutMs: number): ReadinessCheck {
  return {
    name,
    check: () =>
      routedCall(
        router,
        name,
        { retryable: true, timeoutMs: dispatcherTimeoutMs },
        async (endpoint, signal) => {
          const response = await fetch(endpoint.graphqlUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: '{"query":"{ __typename }"}',
            signal,
          });
          const body = (await response.json().catch(() => ({}))) as { data?: { __typename?: string } };
          if (!response.ok || body.data?.__typename !== 'Query') {
            return { value: undefined, outcome: 'error', refused: response.status === 503 };
          }
          return { value: true, outcome: 'success' };
        },
      ).then((ok) => {
        if (!ok) throw new Error(`${name} did not answer { __typename }`);
      }),
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

  const cache = await createCache({
    logger,
    ...(config.REDIS_URL ? { redisUrl: config.REDIS_URL } : { file: embeddedCacheFile(config) }),
    ...(options.cacheKeyPrefix ? { keyPrefix: options.cacheKeyPrefix } : {}),
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
  // Tokens of sessions auth has ended are refused before they expire (auth marks them in the shared cache).
  const verifier = revocationAwareVerifier(
    options.verifier ??
      createRemoteVerifier({
        jwksUrl: config.AUTH_JWKS_URL,
        issuer: config.AUTH_ISSUER,
        audience: config.AUTH_AUDIENCE,
      }),
    sessionRevocations(cache),
    logger,
  );

  follower?.start();
  const gateway = new ApolloGateway({
    supergraphSdl: orchestratorSupergraph({
      ...(follower ? { routing: follower } : {}),
      orchestratorUrl: config.ORCHESTRATOR_URL,
      fallbackSdl,
      logger,
      onServe: (sdl) => {
        servedSdl = sdl;
      },
    }),
    buildService: ({ name }) =>
      new RoutedDataSource({ name, router, dispatcher, timeoutMs: config.SUBGRAPH_TIMEOUT_MS }),
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
      cache: new ApolloCacheAdapter(cache, 'gateway:apq:'),
      persistedQueries: { ttl: config.APQ_TTL_SECONDS },
    },
    // Checked here and again in every subgraph (GRAPHQL_MAX_*), before any subgraph is called.
    operationLimits: operationLimitsOf(config),
    introspection: introspectionOf(config),
    corsOrigins: config.CORS_ORIGINS,
    bodyLimitBytes: config.BODY_LIMIT_BYTES,
    // Bad tokens fail with UNAUTHENTICATED (HTTP 401) before any subgraph is called.
    auth: verifier,
    trustProxy: config.TRUST_PROXY.length > 0 ? config.TRUST_PROXY : false,
    ...(config.RATE_LIMIT_MAX > 0
      ? {
          plugins: (app: FastifyInstance) =>
            registerRateLimit(app, {
              cache: limiterCache,
              max: config.RATE_LIMIT_MAX,
              windowSeconds: config.RATE_LIMIT_WINDOW_SECONDS,
            }),
        }
      : {}),
    configure: follower
      ? (app, { tokenCheck }) =>
          registerServiceRoutes(app, {
            router,
            routing: follower,
            tokenCheck,
            timeoutMs: config.SUBGRAPH_TIMEOUT_MS,
            logger,
          })
      : undefined,
    readiness: () => [
      ...subgraphsOf(servedSdl).map((s) => subgraphAnswers(s.name, router, 2_000)),
      { name: 'cache', check: () => cache.ping() },
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
