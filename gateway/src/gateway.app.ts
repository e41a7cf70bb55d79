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
  type GraphQLHttpServer,
  type Logger,
  type ReadinessCheck,
  type RequestContext,
  rateLimitExceeded,
  verifiedViewer,
} from '@aiva/shared';
import { ApolloGateway } from '@apollo/gateway';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type GatewayConfig, subgraphUrlOverrides } from './config.js';
import { keepAliveFetcher, SubgraphDataSource } from './subgraph-data-source.js';
import { readSupergraph, type SubgraphEndpoint, subgraphsOf } from './supergraph.js';

export interface GatewayApp {
  server: GraphQLHttpServer;
  subgraphs: SubgraphEndpoint[];
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface GatewayAppOptions {
  config: GatewayConfig;
  logger?: Logger;
  /** The supergraph SDL; default: read from SUPERGRAPH_PATH or the committed supergraph.graphql. */
  supergraphSdl?: string;
  /** Subgraph URL overrides by name; default: SUBGRAPH_<NAME>_URL variables. */
  subgraphUrls?: Record<string, string>;
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

/** Asks a subgraph for `{ __typename }`: the cheapest proof that it answers GraphQL. */
function subgraphAnswers(endpoint: SubgraphEndpoint, timeoutMs: number): ReadinessCheck {
  return {
    name: endpoint.name,
    check: async () => {
      const response = await fetch(endpoint.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"query":"{ __typename }"}',
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body = (await response.json()) as { data?: { __typename?: string } };
      if (body.data?.__typename !== 'Query') throw new Error('unexpected response');
    },
  };
}

export async function createGatewayApp(options: GatewayAppOptions): Promise<GatewayApp> {
  const { config } = options;
  const logger = options.logger ?? createLogger('gateway', { level: config.LOG_LEVEL });
  const supergraphSdl = options.supergraphSdl ?? readSupergraph(config.SUPERGRAPH_PATH);
  const overrides = options.subgraphUrls ?? subgraphUrlOverrides();
  const subgraphs = subgraphsOf(supergraphSdl).map((s) => ({ ...s, url: overrides[s.name] ?? s.url }));
  const urlOf = new Map(subgraphs.map((s) => [s.name, s.url]));
  const fetcher = keepAliveFetcher(config.SUBGRAPH_TIMEOUT_MS);
  const cache = await createCache({
    logger,
    ...(config.REDIS_URL ? { redisUrl: config.REDIS_URL } : {}),
    ...(options.cacheKeyPrefix ? { keyPrefix: options.cacheKeyPrefix } : {}),
  });
  // In memory, counters get a cache of their own, so that persisted queries cannot evict them (and reset them).
  const limiterCache = cache.kind === 'redis' ? cache : createMemoryCache({ maxEntries: 100_000 });
  const verifier =
    options.verifier ??
    createRemoteVerifier({
      jwksUrl: config.AUTH_JWKS_URL,
      issuer: config.AUTH_ISSUER,
      audience: config.AUTH_AUDIENCE,
    });

  const gateway = new ApolloGateway({
    supergraphSdl,
    buildService: ({ name, url }) => {
      const target = urlOf.get(name) ?? url;
      if (!target) throw new Error(`The supergraph has no URL for subgraph ${name}`);
      return new SubgraphDataSource({ name, url: target, fetcher });
    },
  });
  const server = await createGraphQLHttpServer<RequestContext>({
    name: 'gateway',
    logger,
    apollo: {
      gateway,
      introspection: config.NODE_ENV !== 'production',
      // Automatic persisted queries, kept in the cache port (Redis when REDIS_URL is set).
      cache: new ApolloCacheAdapter(cache, 'gateway:apq:'),
      persistedQueries: { ttl: config.APQ_TTL_SECONDS },
    },
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
    readiness: [
      ...subgraphs.map((s) => subgraphAnswers(s, 2000)),
      { name: 'cache', check: () => cache.ping() },
    ],
    onClose: [() => cache.close(), ...(limiterCache === cache ? [] : [() => limiterCache.close()])],
  });
  return {
    server,
    subgraphs,
    listen: () => server.listen({ port: config.GATEWAY_PORT, host: config.HOST }),
    close: () => server.close(),
  };
}
