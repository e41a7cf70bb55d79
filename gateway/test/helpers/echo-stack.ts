import { createGatewayApp, gatewayEnvSchema } from '@aiva/gateway';
import {
  type AccessTokenVerifier,
  createSubgraphServer,
  type GraphQLHttpServer,
  loadConfig,
  type RequestContext,
} from '@aiva/shared';
import { parse, print } from 'graphql';
import { composeSupergraph } from '../../src/schema/compose.js';
import { type GatewayUnderTest, silentLogger } from './stack.js';

/** A subgraph that answers with the headers the gateway sent it, and counts how often it was called. */
export const echoTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
  type Echo { authorization: String forwardedFor: String }
  type Query { echo: Echo! }
`);

export interface EchoUnderTest {
  server: GraphQLHttpServer;
  url: string;
  /** How many times `echo` was resolved. */
  calls(): number;
}

interface EchoContext extends RequestContext {
  forwardedFor?: string;
}

export async function startEcho(): Promise<EchoUnderTest> {
  let calls = 0;
  const server = await createSubgraphServer<EchoContext>({
    name: 'echo',
    logger: silentLogger,
    typeDefs: echoTypeDefs,
    context: (base, request) => {
      const forwardedFor = request.headers['x-forwarded-for'];
      return { ...base, ...(typeof forwardedFor === 'string' ? { forwardedFor } : {}) };
    },
    resolvers: {
      Query: {
        echo: (_: unknown, __: unknown, ctx: EchoContext) => {
          calls++;
          return { authorization: ctx.authorization ?? null, forwardedFor: ctx.forwardedFor ?? null };
        },
      },
    },
  });
  const base = await server.listen({ port: 0, host: '127.0.0.1' });
  return { server, url: `${base}/graphql`, calls: () => calls };
}

/** Like `startGateway` in stack.ts, with the gateway options auth and rate limit tests need. */
export async function startGatewayWith(options: {
  subgraphs: Array<{ name: string; url: string; typeDefs: ReturnType<typeof parse> }>;
  env?: Record<string, string>;
  verifier?: AccessTokenVerifier;
  cacheKeyPrefix?: string;
}): Promise<GatewayUnderTest> {
  const composed = composeSupergraph(
    options.subgraphs.map((s) => ({ name: s.name, url: s.url, sdl: print(s.typeDefs) })),
  );
  if (!composed.ok) throw new Error(`composition failed: ${composed.errors.join('; ')}`);
  const config = loadConfig(gatewayEnvSchema, { GATEWAY_PORT: '0', LOG_LEVEL: 'silent', ...options.env });
  const app = await createGatewayApp({
    config,
    logger: silentLogger,
    supergraphSdl: composed.supergraphSdl,
    subgraphUrls: {},
    ...(options.verifier ? { verifier: options.verifier } : {}),
    ...(options.cacheKeyPrefix ? { cacheKeyPrefix: options.cacheKeyPrefix } : {}),
  });
  const base = await app.listen();
  return { app, url: `${base}/graphql`, base };
}
