import {
  ApolloCacheAdapter,
  createCache,
  createGraphQLHttpServer,
  createLogger,
  type GraphQLHttpServer,
  type Logger,
  type ReadinessCheck,
  type RequestContext,
} from '@aiva/shared';
import { ApolloGateway } from '@apollo/gateway';
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
  const cache = await createCache({ logger, ...(config.REDIS_URL ? { redisUrl: config.REDIS_URL } : {}) });

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
    readiness: [
      ...subgraphs.map((s) => subgraphAnswers(s, 2000)),
      { name: 'cache', check: () => cache.ping() },
    ],
    onClose: [() => cache.close()],
  });
  return {
    server,
    subgraphs,
    listen: () => server.listen({ port: config.GATEWAY_PORT, host: config.HOST }),
    close: () => server.close(),
  };
}
