import type { ServerResponse } from 'node:http';
import { httpErrorBody, type TokenCheckHooks } from '@aiva/shared';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GraphQLBody, McpExecutor } from './server.js';

/** Where MCP is served on the gateway, and the protected-resource metadata (RFC 9728). */
export const MCP_PATH = '/mcp';
export const RESOURCE_METADATA_PATH = '/.well-known/oauth-protected-resource';

export interface McpHttpOptions {
  tokenCheck: TokenCheckHooks;
  /** An MCP server for one request, running GraphQL as that request's caller. */
  serverFor(execute: McpExecutor): Server;
  /**
   * Origins a browser may call from (DNS rebinding: a page of another site that resolves to this machine sends
   * its own Origin). A request without Origin (not a browser) passes. `*` allows any.
   */
  allowedOrigins: readonly string[];
  /** Host header values accepted (`host` or `host:port`); empty: any (behind a proxy that checks them). */
  allowedHosts: readonly string[];
}

const hostOf = (value: string) => value.toLowerCase().replace(/:\d+$/, '');

/** The origin a request reached the gateway at, for the resource metadata. */
function originOf(request: FastifyRequest): string {
  return `${request.protocol}://${request.headers.host ?? request.hostname}`;
}

/**
 * MCP over Streamable HTTP at `/mcp`, stateless: every POST is answered on its own (a fresh server and transport,
 * JSON answers), so any gateway instance answers any request and no session needs to stick to one. GET opens a
 * stream of notifications (the tool list changed); DELETE (ending a session) answers 405. The caller is the one of `/graphql`: the
 * same token check (a bad token: 401 with `WWW-Authenticate` naming the resource metadata), the same rate limit;
 * GraphQL runs through the gateway's own `/graphql` path in this process (`inject`), never passing the token to
 * another API. Foreign `Origin`s and unknown `Host`s are refused with 403 before anything runs.
 */
export interface McpHttp {
  /** Tells every client holding a stream on this instance that the tool list changed (a new supergraph). */
  notifyToolsChanged(): void;
  /** Open streams on this instance. */
  readonly streams: number;
}

/** An SSE comment every so often, so that proxies do not close a quiet stream. */
const STREAM_HEARTBEAT_MS = 25_000;

export async function registerMcpHttp(app: FastifyInstance, options: McpHttpOptions): Promise<McpHttp> {
  const streams = new Set<ServerResponse>();
  const anyOrigin = options.allowedOrigins.includes('*');
  const origins = new Set(options.allowedOrigins.map((o) => o.toLowerCase()));
  const hosts = new Set(options.allowedHosts.map(hostOf));

  const refuse = (reply: FastifyReply, message: string) =>
    reply.status(403).type('application/json').send(httpErrorBody(message, 'FORBIDDEN'));

  app.get(RESOURCE_METADATA_PATH, async (request) => ({
    resource: `${originOf(request)}${MCP_PATH}`,
    resource_name: 'AIVA supergraph (MCP)',
    bearer_methods_supported: ['header'],
  }));

  await app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      const origin = request.headers.origin;
      if (origin && !anyOrigin && !origins.has(origin.toLowerCase())) {
        return refuse(reply, `Origin ${origin} is not allowed`);
      }
      const host = request.headers.host;
      if (hosts.size > 0 && (!host || !hosts.has(hostOf(host)))) return refuse(reply, 'Host is not allowed');
    });
    scope.addHook('onRequest', options.tokenCheck.onRequest);
    scope.addHook('onSend', async (request, reply, payload) => {
      if (reply.statusCode === 401) {
        reply.header(
          'www-authenticate',
          `Bearer resource_metadata="${originOf(request)}${RESOURCE_METADATA_PATH}"`,
        );
      }
      return payload;
    });
    const notHere = async (_request: FastifyRequest, reply: FastifyReply) =>
      reply
        .status(405)
        .header('allow', 'GET, POST')
        .type('application/json')
        .send(httpErrorBody('This MCP server is stateless: no session to end', 'BAD_USER_INPUT'));
    // A stream of server-to-client notifications (`notifications/tools/list_changed`), held on whichever instance
    // the client reached: it needs no session, every instance announces its own supergraph changes.
    scope.get(MCP_PATH, { preHandler: options.tokenCheck.preHandler }, async (request, reply) => {
      if (!String(request.headers.accept ?? '').includes('text/event-stream')) {
        return reply
          .status(406)
          .type('application/json')
          .send(httpErrorBody('GET /mcp is a stream: accept text/event-stream', 'BAD_USER_INPUT'));
      }
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
      });
      raw.write(': AIVA MCP notifications\n\n');
      streams.add(raw);
      const heartbeat = setInterval(() => raw.write(': keep-alive\n\n'), STREAM_HEARTBEAT_MS);
      heartbeat.unref();
      raw.on('close', () => {
        clearInterval(heartbeat);
        streams.delete(raw);
      });
    });
    scope.delete(MCP_PATH, notHere);
    scope.post(MCP_PATH, { preHandler: options.tokenCheck.preHandler }, async (request, reply) => {
      const authorization = request.headers.authorization;
      const execute: McpExecutor = async (graphql) => {
        const answer = await app.inject({
          method: 'POST',
          url: '/graphql',
          headers: {
            'content-type': 'application/json',
            accept: 'application/graphql-response+json, application/json',
            'x-request-id': request.id,
            ...(authorization ? { authorization } : {}),
          },
          remoteAddress: request.ip,
          payload: JSON.stringify(graphql),
        });
        let body: GraphQLBody;
        try {
          body = answer.json() as GraphQLBody;
        } catch {
          body = { errors: [{ message: `The gateway answered HTTP ${answer.statusCode}` }] };
        }
        return { status: answer.statusCode, body };
      };
      const server = options.serverFor(execute);
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: true,
      });
      reply.hijack();
      reply.raw.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(request.raw, reply.raw, request.body);
    });
  });
  const message = `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' })}\n\n`;
  return {
    notifyToolsChanged() {
      for (const stream of streams) stream.write(message);
    },
    get streams() {
      return streams.size;
    },
  };
}
