import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeSupergraph } from '@aiva/orchestrator';
import {
  type AccessTokenVerifier,
  createLogger,
  createSubgraphServer,
  type GraphQLHttpServer,
  loadConfig,
  type RequestContext,
} from '@aiva/shared';
import { createTestTokenIssuer } from '@aiva/shared/testing';
import { parse, print } from 'graphql';
import { gatewayEnvSchema } from '../../src/config.js';
import { createGatewayApp, type GatewayApp } from '../../src/gateway.app.js';

export { bearer, graphql } from '@aiva/shared/testing';

export const silentLogger = createLogger('test', { level: 'silent' });

/** Mints access tokens the way auth does; the gateways started here verify with its public key. */
export const tokens = await createTestTokenIssuer();

export interface GatewayUnderTest {
  app: GatewayApp;
  url: string;
  base: string;
}

/**
 * A subgraph that answers with the headers the gateway sent it (as its server accepted them: the request id,
 * a valid trace context), and counts how often it was called.
 */
export const echoTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
  type Echo {
    authorization: String
    forwardedFor: String
    requestId: String
    traceparent: String
    tracestate: String
  }
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
          return {
            authorization: ctx.authorization ?? null,
            forwardedFor: ctx.forwardedFor ?? null,
            requestId: ctx.requestId,
            traceparent: ctx.traceparent ?? null,
            tracestate: ctx.tracestate ?? null,
          };
        },
      },
    },
  });
  const base = await server.listen({ port: 0, host: '127.0.0.1' });
  return { server, url: `${base}/graphql`, calls: () => calls };
}

/**
 * A gateway in this process over the given subgraphs (composed here), routing to their URLs only: no
 * orchestrator, as a gateway that never reached one.
 */
export async function startGatewayWith(options: {
  subgraphs: Array<{ name: string; url: string; typeDefs: ReturnType<typeof parse> }>;
  env?: Record<string, string>;
  verifier?: AccessTokenVerifier;
  cacheKeyPrefix?: string;
  /** Follow the orchestrator at ORCHESTRATOR_URL (default false: the subgraphs' URLs only). */
  discovery?: boolean;
}): Promise<GatewayUnderTest> {
  const composed = composeSupergraph(
    options.subgraphs.map((s) => ({ name: s.name, url: s.url, sdl: print(s.typeDefs) })),
  );
  if (!composed.ok) throw new Error(`composition failed: ${composed.errors.join('; ')}`);
  // Its own data directory: the embedded cache (rate limits, persisted queries) is not shared with other gateways.
  const dataDir = mkdtempSync(join(tmpdir(), 'aiva-gateway-'));
  const config = loadConfig(gatewayEnvSchema, {
    GATEWAY_PORT: '0',
    LOG_LEVEL: 'silent',
    DATA_DIR: dataDir,
    ...options.env,
  });
  const app = await createGatewayApp({
    config,
    logger: silentLogger,
    supergraphSdl: composed.supergraphSdl,
    subgraphUrls: {},
    discovery: options.discovery ?? false,
    ...(options.verifier ? { verifier: options.verifier } : {}),
    ...(options.cacheKeyPrefix ? { cacheKeyPrefix: options.cacheKeyPrefix } : {}),
  });
  const close = app.close.bind(app);
  app.close = async () => {
    await close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  const base = await app.listen();
  return { app, url: `${base}/graphql`, base };
}
