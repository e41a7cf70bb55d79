// A plain @apollo/gateway on fastify, for side-by-side benchmarks: the supergraph at SUPERGRAPH_PATH (default: the
// committed one), each subgraph at its routing URL or SUBGRAPH_<NAME>_URL, the caller's Authorization header passed
// on, nothing else (no token check, no limits, no registry). Prints one JSON line `{ "url": ... }` once listening;
// stops on SIGTERM or SIGINT.
import { readSupergraph, subgraphUrlOverrides } from '@aiva/shared';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { fastifyApolloDrainPlugin, fastifyApolloHandler } from '@as-integrations/fastify';
import Fastify from 'fastify';

const overrides = subgraphUrlOverrides();
const gateway = new ApolloGateway({
  supergraphSdl: readSupergraph(process.env.SUPERGRAPH_PATH),
  buildService: ({ name, url }) =>
    new RemoteGraphQLDataSource({
      url: overrides[name] ?? url,
      willSendRequest({ request, context }) {
        const authorization = (context as { authorization?: string }).authorization;
        if (authorization) request.http?.headers.set('authorization', authorization);
      },
    }),
});
const app = Fastify();
const apollo = new ApolloServer({ gateway, plugins: [fastifyApolloDrainPlugin(app)] });
await apollo.start();
app.route({
  url: '/graphql',
  method: ['GET', 'POST', 'OPTIONS'],
  handler: fastifyApolloHandler(apollo, {
    context: async (request) => ({ authorization: request.headers.authorization }),
  }),
});
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
const port = typeof address === 'object' && address ? address.port : 0;
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/graphql` })}\n`);
const stop = async () => {
  await apollo.stop();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
