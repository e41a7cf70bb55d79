import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { type DocumentNode, print } from 'graphql';
import { sdlHash } from '../discovery/sdl-hash.js';
import {
  createGraphQLHttpServer,
  type GraphQLHttpServer,
  type GraphQLHttpServerOptions,
  type RequestContext,
} from './graphql-http-server.js';

export interface SubgraphServerOptions<TContext extends RequestContext>
  extends Omit<GraphQLHttpServerOptions<TContext>, 'apollo'> {
  typeDefs: DocumentNode;
  // biome-ignore lint/suspicious/noExplicitAny: resolver maps are typed by each subgraph
  resolvers: GraphQLResolverMap<any>;
}

/**
 * A federation subgraph: `buildSubgraphSchema` served by the shared HTTP server, with the same operation limits
 * as the gateway (a subgraph can be called directly) and introspection only in development, unless the options
 * say otherwise (see `operationLimits` and `introspection`).
 */
export function createSubgraphServer<TContext extends RequestContext>(
  options: SubgraphServerOptions<TContext>,
): Promise<GraphQLHttpServer> {
  const { typeDefs, resolvers, ...rest } = options;
  const schema = buildSubgraphSchema([{ typeDefs, resolvers }]);
  return createGraphQLHttpServer<TContext>({
    ...rest,
    // The SDL it serves goes to the registry: composed live in development, checked against the supergraph in
    // production.
    ...(rest.discovery
      ? { discovery: { ...rest.discovery, sdl: print(typeDefs), sdlHash: sdlHash(typeDefs) } }
      : {}),
    apollo: {
      schema,
      // Federated traces would expose resolver timings to any caller that asks for them.
      plugins: [ApolloServerPluginInlineTraceDisabled()],
    },
  });
}
