import {
  httpErrorBody,
  type Lease,
  type Logger,
  type RoutingSource,
  type RoutingTable,
  type ServiceRouter,
  type TokenCheckHooks,
  traceContextOf,
} from '@aiva/shared';
import httpProxy from '@fastify/http-proxy';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PASS_THROUGH } from './compression.js';

type PublicRoute = RoutingTable['routes'][number];

export interface ServiceRoutesOptions {
  router: ServiceRouter;
  routing: RoutingSource;
  tokenCheck: TokenCheckHooks;
  /** Deadline for an upstream's response headers, in ms (streams may then run as long as they need). */
  timeoutMs: number;
  logger?: Logger;
}

/** The route a path belongs to: the longest declared prefix that equals it or is a parent of it. */
export function matchRoute(routes: readonly PublicRoute[], path: string): PublicRoute | undefined {
  let best: PublicRoute | undefined;
  for (const route of routes) {
    const within = path === route.prefix || path.startsWith(`${route.prefix}/`);
    if (within && (!best || route.prefix.length > best.prefix.length)) best = route;
  }
  return best;
}

const pathOf = (url: string) => url.split('?', 1)[0] ?? url;

/** What the forwarded headers are made from. */
interface CallerOf {
  ip: string;
  id: string;
  headers: Record<string, string | string[] | undefined> & { authorization?: string | undefined };
}

/**
 * Forwards the public HTTP routes services declared when they registered (uploads, server-sent event streams,
 * WebSockets) from the gateway's port to a healthy instance of the service, so a client needs one origin. The
 * requests pass the same checks as `/graphql`: a bad access token is a 401, and the per-client rate limit
 * counts them. Bodies and responses stream through unbuffered (@fastify/http-proxy over undici); WebSocket
 * upgrades are forwarded for routes that declared them. A path no service declared is a 404.
 */
export async function registerServiceRoutes(app: FastifyInstance, options: ServiceRoutesOptions) {
  const { router, routing, tokenCheck } = options;
  /** The instance each forwarded request went to, and when it started. */
  // Keyed by the fastify request (the proxy's hooks see it with wider server typings).
  const inFlight = new WeakMap<object, { lease: Lease; route: PublicRoute; started: bigint }>();
  /** The instance base URL each request goes to (kept after a WebSocket upgrade finished its lease). */
  const upstreams = new WeakMap<object, string>();

  const finish = (request: object, outcome: 'success' | 'error' | 'connection') => {
    const entry = inFlight.get(request);
    if (!entry) return;
    inFlight.delete(request);
    entry.lease.done(outcome, Number(process.hrtime.bigint() - entry.started) / 1e9);
  };

  /**
   * What the instance learns about the caller: the same headers the gateway sends subgraphs (the request id it
   * accepted or made, a valid trace context only).
   */
  const forwardedHeaders = <H extends object>(request: CallerOf, headers: H): H => {
    const {
      traceparent: _traceparent,
      tracestate: _tracestate,
      ...rest
    } = headers as Record<string, unknown>;
    const next: Record<string, unknown> = {
      ...rest,
      ...traceContextOf(request.headers),
      'x-forwarded-for': request.ip,
      'x-request-id': request.id,
    };
    if (request.headers.authorization) next.authorization = request.headers.authorization;
    return next as H;
  };

  await app.register(async (scope) => {
    scope.addHook('onRequest', tokenCheck.onRequest);
    scope.addHook('onResponse', async (request, reply) => {
      finish(request, reply.statusCode >= 500 ? 'error' : 'success');
    });
    await scope.register(httpProxy, {
      // No fixed upstream: `getUpstream` picks an instance per request.
      upstream: '',
      prefix: '/',
      websocket: true,
      // Responses stream through as the service sent them: the gateway does not compress them.
      config: PASS_THROUGH,
      // Every method a service route may use; bodies pass through as streams. (OPTIONS is CORS preflight,
      // answered by the gateway itself.)
      httpMethods: ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT'],
      preHandler: async (request: FastifyRequest, reply: FastifyReply) => {
        await tokenCheck.preHandler(request);
        const path = pathOf(request.url);
        const route = matchRoute(routing.current()?.routes ?? [], path);
        const upgrade = request.headers.upgrade?.toLowerCase() === 'websocket';
        if (!route || (upgrade && !route.websocket)) {
          return reply
            .status(404)
            .type('application/json')
            .send(httpErrorBody(`No route for ${request.method} ${path}`, 'NOT_FOUND'));
        }
        let lease: Lease;
        try {
          lease = router.pick(route.service);
        } catch {
          return reply
            .status(503)
            .type('application/json')
            .send(
              httpErrorBody(`The ${route.service} service is unavailable`, 'INTERNAL_SERVER_ERROR', {
                serviceName: route.service,
              }),
            );
        }
        inFlight.set(request, { lease, route, started: process.hrtime.bigint() });
        upstreams.set(request, lease.endpoint.url);
        // A WebSocket lives on after the upgrade: it does not count as an outstanding request.
        if (upgrade) finish(request, 'success');
      },
      replyOptions: {
        getUpstream: (request) => upstreams.get(request) ?? 'http://127.0.0.1:9',
        rewriteRequestHeaders: (request, headers) => forwardedHeaders(request, headers),
        // One attempt: a streamed body cannot be sent twice.
        retryDelay: () => null,
        timeout: options.timeoutMs,
        onError: (reply, { error }) => {
          const request = reply.request;
          const service = inFlight.get(request)?.route.service ?? 'upstream';
          finish(request, 'connection');
          options.logger?.warn({ service, err: error.message }, 'service route: upstream did not answer');
          reply
            .status(502)
            .type('application/json')
            .send(
              httpErrorBody(`The ${service} service is unavailable`, 'INTERNAL_SERVER_ERROR', {
                serviceName: service,
              }),
            );
        },
      },
      // The plugin's typings omit `rewriteRequestHeaders`, which it does call for WebSocket upstreams.
      wsClientOptions: {
        rewriteRequestHeaders: (headers: Record<string, unknown>, request: CallerOf) =>
          forwardedHeaders(request, headers),
      } as unknown as Record<string, never>,
    });
  });
}
