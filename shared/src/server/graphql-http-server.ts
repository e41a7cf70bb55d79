import { Readable } from 'node:stream';
import {
  ApolloServer,
  type ApolloServerOptions,
  type ApolloServerPlugin,
  type BaseContext,
  HeaderMap,
  type HTTPGraphQLRequest,
} from '@apollo/server';
import { fastifyApolloDrainPlugin } from '@as-integrations/fastify';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { type AccessTokenVerifier, bearerToken } from '../auth/verifier.js';
import type { Viewer } from '../auth/viewer.js';
import { RedisUnavailableError } from '../cache/redis-connection.js';
import {
  createInstanceRegistration,
  type DiscoveryOptions,
  type InstanceRegistration,
} from '../discovery/registration.js';
import { AivaError, createFormatError } from '../errors.js';
import { type Logger, lazyChildLoggerFactory } from '../log.js';
import {
  budgetMsOf,
  DEADLINE_GRACE_MS,
  DEADLINE_HEADER,
  deadlinePlugin,
  type RequestBudget,
  type ServerTimeouts,
  serverTimeoutsFromEnv,
  startBudget,
} from './deadlines.js';
import { createDependencyMonitor, type DependencyMonitor } from './dependencies.js';
import { csrfPrevention, documentErrorStatus, graphqlResponseStatus } from './graphql-over-http.js';
import { installHttpErrorHandlers, sendHttpError } from './http-errors.js';
import { createServiceMetrics, type ServiceMetrics } from './metrics.js';
import {
  graphqlEdgeFromEnv,
  type OperationLimits,
  operationLimitRules,
  operationParseOptions,
  persistedQuerySizeLimit,
  tokenLimitError,
  withoutSuggestions,
} from './operation-limits.js';
import { type ReadinessCheck, runReadinessChecks } from './readiness.js';
import { requestIdOf, traceContextOf } from './request-identity.js';
import { reusedResult } from './reused-result.js';
import { registerSecurity } from './security.js';

export * from './deadlines.js';
export * from './dependencies.js';
export { httpErrorBody, installHttpErrorHandlers, sendHttpError } from './http-errors.js';
export * from './operation-limits.js';
export {
  CacheRateLimitStore,
  type CacheRateLimitStoreOptions,
  cacheRateLimitStore,
  type RateLimitHits,
  type RateLimitStore,
  type RateLimitStoreCtor,
  rateLimitExceeded,
} from './rate-limit-store.js';
export * from './request-identity.js';
export { reusedResult } from './reused-result.js';

/** What every resolver gets, whatever the service adds. */
export interface RequestContext extends BaseContext {
  requestId: string;
  log: Logger;
  /** The raw `Authorization` header, when present (forwarded by the gateway). */
  authorization?: string;
  /** The verified caller, when the request carried a valid access token. */
  viewer?: Viewer;
  /** The client's address (from a trusted proxy's X-Forwarded-For when TRUST_PROXY allows it). */
  ip: string;
  /** The caller's W3C trace context, when valid (passed on to the services this request calls). */
  traceparent?: string;
  tracestate?: string;
  /**
   * When the request's time budget ends (epoch ms): the server's own limit (GRAPHQL_REQUEST_TIMEOUT_MS, at the
   * gateway as in every subgraph), shortened by a caller's `x-aiva-deadline-ms`. Fields that have not started
   * by then fail with DEADLINE_EXCEEDED; the gateway's subgraph requests get what is left of it.
   */
  deadline: number;
  /** Aborts when the budget ends: pass it on to stores and outbound calls, so their work stops with it. */
  signal: AbortSignal;
}

export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

/** How long an answer of `/ready` or `/metrics` is reused, by default. */
export const DEFAULT_OPS_CACHE_MS = 1000;

export interface GraphQLHttpServerOptions<TContext extends RequestContext> {
  name: string;
  logger: Logger;
  /**
   * The Apollo Server options: a `schema` (subgraph) or a `gateway`. Error formatting, metrics, operation limits
   * and introspection are added.
   */
  apollo: Omit<ApolloServerOptions<TContext>, 'formatError' | 'logger' | 'introspection' | 'parseOptions'>;
  /**
   * Limits every operation must keep (depth, aliases, root fields, directives, tokens, cost, persisted query
   * size); default: from the environment (`GRAPHQL_MAX_*`, `APQ_MAX_QUERY_BYTES`; see `operationLimitsOf`).
   */
  operationLimits?: OperationLimits;
  /**
   * Introspection and "did you mean" suggestions in errors; default: from the environment (GRAPHQL_INTROSPECTION,
   * else on in development only; see `introspectionOf`).
   */
  introspection?: boolean;
  /**
   * How long an answer of `/ready` and of `/metrics` is reused, in ms (default 1000; 0: only concurrent calls
   * share one).
   */
  opsCacheMs?: number;
  /** Builds the per-request context from the base context (loaders, the caller, ...). */
  context?: (base: RequestContext, request: FastifyRequest) => Promise<TContext> | TContext;
  /**
   * Dependencies `/ready` asks (a function: asked anew at each probe, for dependencies that change). Hard checks
   * decide readiness; `soft` ones (a bus, a cache) that fail, and the parts a passing check names as down (the
   * gateway's unreachable subgraph instances), are reported under `degraded` without making the service unready.
   */
  readiness?: ReadinessCheck[] | (() => ReadinessCheck[]);
  /**
   * The service's dependency monitor, shared with its adapters (their connection states, the requests they
   * served degraded): one log line per state change, `aiva_dependency_up` and `aiva_degraded_requests_total`
   * on `/metrics`. The `/ready` checks report to it too. Default: a new one.
   */
  dependencies?: DependencyMonitor;
  /**
   * Deadlines: the budget of one GraphQL request and fastify's request, keep-alive and connection timeouts;
   * default: from the environment (GRAPHQL_REQUEST_TIMEOUT_MS, HTTP_*; see `serverTimeoutsOf`).
   */
  timeouts?: Partial<ServerTimeouts>;
  /** Run after HTTP has stopped and in-flight requests finished, in order (close adapters here). */
  onClose?: Array<() => Promise<void>>;
  bodyLimitBytes?: number;
  corsOrigins?: readonly string[];
  /** Verifies `Authorization: Bearer` access tokens; a bad token fails the request with UNAUTHENTICATED. */
  auth?: AccessTokenVerifier;
  /** Proxies whose X-Forwarded-For is believed (fastify `trustProxy`: addresses or CIDRs). */
  trustProxy?: string | string[] | boolean;
  /**
   * Registers plugins that must see the routes as they are added, e.g. @fastify/rate-limit (await
   * `app.register`); runs before any route exists. The access token, when `auth` is set, is already verified
   * when a `/graphql` onRequest hook added by a plugin runs: see `verifiedViewer`.
   */
  plugins?: (app: FastifyInstance) => Promise<void> | void;
  /**
   * Adds routes or plugins before the server starts. `tokenCheck` gives other routes the access-token check of
   * `/graphql` (the same 401 for a bad token, the same viewer for rate-limit keys).
   */
  configure?: (app: FastifyInstance, kit: { tokenCheck: TokenCheckHooks }) => Promise<void> | void;
  /**
   * Registration with the orchestrator once listening (heartbeats with the load, deregistration on close).
   * Without a `token` in it the server does not register.
   */
  discovery?: DiscoveryOptions & {
    /** The subgraph's SDL and its `sdlHash` (subgraph servers set these). */
    sdl?: string;
    sdlHash?: string;
  };
}

/** Route hooks that verify a request's access token: `onRequest` verifies it, `preHandler` rejects a bad one. */
export interface TokenCheckHooks {
  onRequest: (request: FastifyRequest) => Promise<void>;
  preHandler: (request: FastifyRequest) => Promise<void>;
}

export interface GraphQLHttpServer {
  readonly name: string;
  readonly app: FastifyInstance;
  readonly metrics: ServiceMetrics;
  /** The service's dependencies and their states (see `dependencies` in the options). */
  readonly dependencies: DependencyMonitor;
  /** Starts listening (then registers with the orchestrator); resolves with the base URL (`http://host:port`). */
  listen(options: { port: number; host: string }): Promise<string>;
  /** The registration with the orchestrator, once listening with discovery settings. */
  readonly registration: InstanceRegistration | undefined;
  /**
   * Deregisters (routers stop sending new work), stops accepting, finishes in-flight requests, then runs
   * `onClose`. Safe to call twice.
   */
  close(): Promise<void>;
}

/** The outcome of verifying a request's access token, kept for the request's lifetime. */
type Verification = { viewer: Viewer | undefined } | { error: unknown };
const verifications = new WeakMap<FastifyRequest, Verification>();

/**
 * The viewer verified from a `/graphql` request's access token (verified once, in an onRequest hook, when the
 * server has `auth`); undefined for an anonymous request or a bad token. For hooks such as rate-limit keys.
 */
export function verifiedViewer(request: FastifyRequest): Viewer | undefined {
  const verification = verifications.get(request);
  return verification && 'viewer' in verification ? verification.viewer : undefined;
}

/**
 * fastify + Apollo Server with what every AIVA HTTP service has: `/graphql` (GET and POST, with the
 * GraphQL-over-HTTP status codes and the CSRF prevention of graphql-over-http.ts), `/health` (the process can
 * serve), `/ready` (its hard dependencies answer; soft ones are reported as `degraded`), `/metrics`, security
 * headers, CORS, a body limit, deadlines (a budget per GraphQL request, HTTP timeouts), the shared error
 * formatter and graceful close.
 */
export async function createGraphQLHttpServer<TContext extends RequestContext>(
  options: GraphQLHttpServerOptions<TContext>,
): Promise<GraphQLHttpServer> {
  const { name, logger } = options;
  const bodyLimit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const timeouts: ServerTimeouts = {
    ...serverTimeoutsFromEnv(),
    ...Object.fromEntries(Object.entries(options.timeouts ?? {}).filter(([, value]) => value !== undefined)),
  };
  const app = Fastify({
    // A client gets this long to send its whole request, an idle keep-alive connection is kept this long, and a
    // connection that sees no traffic at all (a client that stopped reading) is closed after this long.
    requestTimeout: timeouts.httpRequestTimeoutMs,
    keepAliveTimeout: timeouts.keepAliveTimeoutMs,
    connectionTimeout: timeouts.connectionTimeoutMs,
    loggerInstance: logger as FastifyBaseLogger,
    // Per-request lines would dominate the log; metrics count requests, errors are logged where they happen.
    logController: new LogController({ disableRequestLogging: true }),
    // request.log is made only when a request logs.
    childLoggerFactory: lazyChildLoggerFactory as never,
    bodyLimit,
    // The client's x-request-id only when well-formed (else a fresh UUID): it reaches logs and subgraphs.
    requestIdHeader: false,
    genReqId: requestIdOf,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    trustProxy: options.trustProxy ?? false,
  });
  const metrics = createServiceMetrics(name);
  const dependencies = options.dependencies ?? createDependencyMonitor(logger);
  dependencies.register(metrics.registry);
  const load = trackLoad(app);
  await registerSecurity(app, { corsOrigins: options.corsOrigins ?? [] });
  installHttpErrorHandlers(app, { bodyLimit, logger });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  const { limits, introspection } = edgeSettings(options);
  const sharedFormatError = createFormatError({
    onInternalError: (error) => logger.error({ err: error }, 'unexpected error in GraphQL execution'),
  });
  // Without introspection, errors do not spell the schema out either ("Did you mean ...?").
  const formatError: typeof sharedFormatError = (formatted, error) =>
    sharedFormatError(
      ...dependencyUnavailable(
        tokenLimitError(introspection ? formatted : withoutSuggestions(formatted)),
        error,
      ),
    );
  const plugins: ApolloServerPlugin<TContext>[] = [
    fastifyApolloDrainPlugin(app) as ApolloServerPlugin<TContext>,
    metrics.apolloPlugin<TContext>(),
    persistedQuerySizeLimit<TContext>(limits.persistedQueryBytes),
    // Work whose budget is spent stops: refused before execution, abandoned field by field during it.
    deadlinePlugin<TContext>((stage) => metrics.deadlineExceeded(stage)),
    // Parse, validation and variable errors: HTTP 200 under `accept: application/json` (graphqlResponseStatus).
    documentErrorStatus<TContext>(),
    ...(options.apollo.plugins ?? []),
  ];
  const apollo = new ApolloServer<TContext>({
    ...(options.apollo as ApolloServerOptions<TContext>),
    introspection,
    // Refused before any resolver runs: the token limit while parsing, the others while validating.
    parseOptions: operationParseOptions(limits),
    validationRules: [...operationLimitRules(limits), ...(options.apollo.validationRules ?? [])],
    plugins,
    formatError,
    logger: apolloLogger(logger),
    // Signals are the process's business (onShutdownSignal): Apollo must not stop or re-raise on its own.
    stopOnTerminationSignals: false,
    // Ours instead (csrfPrevention, on the route): Apollo's refuses every GET without a preflight header, even
    // the anonymous queries the GraphQL-over-HTTP spec describes.
    csrfPrevention: false,
  });
  await apollo.start();
  await options.plugins?.(app);

  // The token is verified once per request, before the onRequest hooks of plugins (rate limits key on the
  // viewer). A bad token is kept and fails the request right after them, before the body is even parsed: so
  // it is still counted by a rate limiter, and GraphQL never runs.
  const auth = options.auth;
  const verifyAccessToken = async (request: FastifyRequest) => {
    if (!auth) return;
    try {
      verifications.set(request, { viewer: await viewerOf(auth, request.headers.authorization) });
    } catch (error) {
      verifications.set(request, { error });
    }
  };
  const rejectBadToken = async (request: FastifyRequest, _reply: FastifyReply, payload: unknown) => {
    const verification = verifications.get(request);
    if (verification && 'error' in verification) throw verification.error;
    return payload;
  };
  const viewerFor = async (request: FastifyRequest): Promise<Viewer | undefined> => {
    const verification = verifications.get(request);
    if (!verification) return auth ? viewerOf(auth, request.headers.authorization) : undefined;
    if ('error' in verification) throw verification.error;
    return verification.viewer;
  };

  // Each /graphql request gets its budget on arrival: the server's own limit, shortened by a caller's
  // x-aiva-deadline-ms (the gateway's remaining budget), never lengthened by it.
  const budgets = new WeakMap<FastifyRequest, RequestBudget>();
  const startRequestBudget = async (request: FastifyRequest) => {
    budgets.set(
      request,
      startBudget(budgetMsOf(request.headers[DEADLINE_HEADER], timeouts.requestTimeoutMs)),
    );
  };
  const endRequestBudget = async (request: FastifyRequest) => {
    budgets.get(request)?.dispose();
  };

  const buildContext = async (request: FastifyRequest, budget: RequestBudget): Promise<TContext> => {
    const authorization = request.headers.authorization;
    const viewer = await viewerFor(request);
    const base: RequestContext = {
      requestId: String(request.id),
      log: request.log as Logger,
      ip: request.ip,
      ...(authorization ? { authorization } : {}),
      ...(viewer ? { viewer } : {}),
      ...traceContextOf(request.headers),
      deadline: budget.deadline,
      signal: budget.signal,
    };
    return options.context ? options.context(base, request) : (base as TContext);
  };

  /**
   * Apollo over fastify (as @as-integrations/fastify does it), bounded by the request's budget: a request whose
   * budget is already spent is refused before any work, and one still running DEADLINE_GRACE_MS after its
   * deadline is answered with DEADLINE_EXCEEDED (HTTP 504) while its fields stop (see deadlinePlugin).
   */
  const graphqlHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    const budget = budgets.get(request) ?? startBudget(timeouts.requestTimeoutMs);
    const remaining = budget.deadline - Date.now();
    if (remaining <= 0) {
      metrics.deadlineExceeded('refused');
      return sendHttpError(
        reply,
        504,
        'The request ran out of time before it started',
        'INTERNAL_SERVER_ERROR',
        {
          reason: 'DEADLINE_EXCEEDED',
        },
      );
    }
    const httpGraphQLRequest = httpGraphQLRequestOf(request);
    const execution = apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest,
      context: () => buildContext(request, budget),
    });
    let timer: NodeJS.Timeout | undefined;
    const outOfTime = new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, remaining + DEADLINE_GRACE_MS, undefined);
    });
    let response: Awaited<typeof execution> | undefined;
    try {
      response = await Promise.race([execution, outOfTime]);
    } finally {
      clearTimeout(timer);
    }
    if (!response) {
      // Its fields stop as they come (deadlinePlugin); whatever it still produces is dropped.
      execution.catch(() => undefined);
      metrics.deadlineExceeded('cut_off');
      return sendHttpError(reply, 504, 'The request ran out of time', 'INTERNAL_SERVER_ERROR', {
        reason: 'DEADLINE_EXCEEDED',
      });
    }
    for (const [key, value] of response.headers) reply.header(key, value);
    reply.code(
      graphqlResponseStatus(httpGraphQLRequest, response.status, response.headers.get('content-type')),
    );
    if (response.body.kind === 'complete') return response.body.string;
    return reply.send(Readable.from(response.body.asyncIterator));
  };
  app.route({
    url: '/graphql',
    method: ['GET', 'POST', 'OPTIONS'],
    // CSRF prevention first: a refused request costs no token verification.
    onRequest: [csrfPrevention, startRequestBudget, verifyAccessToken],
    preParsing: rejectBadToken,
    onResponse: endRequestBudget,
    handler: graphqlHandler,
  });
  registerOpsRoutes(app, {
    name,
    metrics,
    dependencies,
    readiness: options.readiness ?? [],
    cacheMs: options.opsCacheMs ?? DEFAULT_OPS_CACHE_MS,
  });
  const tokenCheck: TokenCheckHooks = {
    onRequest: verifyAccessToken,
    preHandler: async (request) => {
      const verification = verifications.get(request);
      if (verification && 'error' in verification) throw verification.error;
    },
  };
  await options.configure?.(app, { tokenCheck });

  let closing: Promise<void> | undefined;
  let registration: InstanceRegistration | undefined;
  return {
    name,
    app,
    metrics,
    dependencies,
    get registration() {
      return registration;
    },
    async listen({ port, host }) {
      await app.listen({ port, host });
      const address = app.server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
      logger.info({ url }, `${name} listening`);
      if (options.discovery) {
        registration = createInstanceRegistration({
          ...options.discovery,
          version: options.discovery.version ?? serviceVersion(),
          service: name,
          listenUrl: url,
          load,
          logger,
        });
        registration.start();
      }
      return url;
    },
    close() {
      closing ??= (async () => {
        // Leave the routing table first, so routers stop sending new work while in-flight requests finish.
        await registration?.stop();
        // A keep-alive connection whose request was in flight when closing began turns idle afterwards and would
        // hold the close until its keep-alive timeout: close such connections as soon as they are idle.
        const reaper = setInterval(() => app.server.closeIdleConnections(), 50);
        try {
          // Drains fastify (stop accepting, finish in-flight requests), then stops Apollo (and a gateway).
          await apollo.stop();
        } finally {
          clearInterval(reaper);
        }
        for (const close of options.onClose ?? []) {
          try {
            await close();
          } catch (error) {
            logger.error({ err: error }, 'error while closing an adapter');
          }
        }
        logger.info(`${name} stopped`);
      })();
      return closing;
    },
  };
}

/** Operation limits and introspection: as given, else from the environment. */
function edgeSettings(options: { operationLimits?: OperationLimits; introspection?: boolean }): {
  limits: OperationLimits;
  introspection: boolean;
} {
  const { operationLimits, introspection } = options;
  if (operationLimits && introspection !== undefined) return { limits: operationLimits, introspection };
  const fromEnv = graphqlEdgeFromEnv();
  return {
    limits: operationLimits ?? fromEnv.limits,
    introspection: introspection ?? fromEnv.introspection,
  };
}

/** The version an instance registers with: AIVA_SERVICE_VERSION, else the version pnpm runs the package with. */
function serviceVersion(): string {
  return process.env.AIVA_SERVICE_VERSION ?? process.env.npm_package_version ?? '0.0.0';
}

/** Counts requests in flight and served, for the load an instance reports with its heartbeats. */
function trackLoad(app: FastifyInstance): () => { inflight: number; requestsTotal: number } {
  let inflight = 0;
  let requestsTotal = 0;
  app.addHook('onRequest', async () => {
    inflight++;
  });
  app.addHook('onResponse', async () => {
    inflight--;
    requestsTotal++;
  });
  return () => ({ inflight: Math.max(0, inflight), requestsTotal });
}

/** The caller behind an Authorization header; a bad one is an HTTP 401 with UNAUTHENTICATED. */
async function viewerOf(
  verifier: AccessTokenVerifier,
  authorization: string | undefined,
): Promise<Viewer | undefined> {
  try {
    const token = bearerToken(authorization);
    return token ? await verifier.verify(token) : undefined;
  } catch (error) {
    // A bad token is a 401; a token that cannot be checked now (no usable keys) keeps its own 503.
    if (error instanceof AivaError && error.code === 'UNAUTHENTICATED') {
      throw new AivaError(error.code, error.message, {
        http: { status: 401, headers: new Map([['www-authenticate', 'Bearer']]) },
      });
    }
    throw error;
  }
}

/**
 * INTERNAL_SERVER_ERROR reasons of the resilience layer that clients see as they are (they are made by AIVA's
 * own code, never carry internals, and tell a client to retry): a spent budget, keys or sessions unavailable.
 */
const PUBLIC_FAILURE_REASONS = new Set([
  'DEADLINE_EXCEEDED',
  'AUTH_KEYS_UNAVAILABLE',
  'SESSIONS_UNAVAILABLE',
  'DEPENDENCY_UNAVAILABLE',
]);

/**
 * Failures of a dependency reaching a client, made clear rather than masked as "Internal server error":
 * - a hard dependency that does not answer (a Redis command past its deadline, or Redis not connected — auth's
 *   session store): INTERNAL_SERVER_ERROR with `reason: DEPENDENCY_UNAVAILABLE`;
 * - an INTERNAL_SERVER_ERROR with one of PUBLIC_FAILURE_REASONS (DEADLINE_EXCEEDED, ...): kept as it is (the
 *   error Apollo hands over may be a copy that is no longer an AivaError, so it is recognised by its reason).
 * Anything else is unchanged.
 */
function dependencyUnavailable(
  formatted: GraphQLFormattedError,
  error: unknown,
): [GraphQLFormattedError, unknown] {
  let original = error;
  for (let i = 0; i < 5 && original instanceof GraphQLError && original.originalError; i++) {
    original = original.originalError;
  }
  const reason = formatted.extensions?.reason;
  if (
    !(original instanceof AivaError) &&
    formatted.extensions?.code === 'INTERNAL_SERVER_ERROR' &&
    typeof reason === 'string' &&
    PUBLIC_FAILURE_REASONS.has(reason)
  ) {
    return [formatted, new AivaError('INTERNAL_SERVER_ERROR', formatted.message, { reason })];
  }
  if (!(original instanceof RedisUnavailableError)) return [formatted, error];
  const message = 'A service this request needs is unavailable right now: try again shortly';
  return [
    { ...formatted, message, extensions: { reason: 'DEPENDENCY_UNAVAILABLE' } },
    new AivaError('INTERNAL_SERVER_ERROR', message, { reason: 'DEPENDENCY_UNAVAILABLE' }),
  ];
}

/** The request as Apollo Server takes it (as @as-integrations/fastify builds it). */
function httpGraphQLRequestOf(request: FastifyRequest): HTTPGraphQLRequest {
  const headers = new HeaderMap();
  for (const [key, value] of Object.entries(request.headers)) {
    if (value) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
  }
  return {
    body: request.body,
    method: request.method.toUpperCase(),
    headers,
    search: new URL(request.url, `${request.protocol}://${request.hostname}/`).search,
  };
}

function registerOpsRoutes(
  app: FastifyInstance,
  deps: {
    name: string;
    metrics: ServiceMetrics;
    dependencies: DependencyMonitor;
    readiness: ReadinessCheck[] | (() => ReadinessCheck[]);
    cacheMs: number;
  },
) {
  app.get('/health', async () => ({ status: 'ok', service: deps.name }));
  // Anyone may ask /ready and /metrics, as often as they like: the checks (a query to every subgraph at the
  // gateway) and the rendering run at most once per `cacheMs`, and concurrent callers share one run. Each
  // outcome goes to the dependency monitor: probes ask every second or two, a dependency's failure is logged
  // when it goes down and when it is back, not at every probe.
  const readiness = reusedResult(deps.cacheMs, async () => {
    const checks = typeof deps.readiness === 'function' ? deps.readiness() : deps.readiness;
    return runReadinessChecks(checks, {
      onResult: (check, error) => {
        deps.dependencies.declare(check.name, check.soft ? 'degraded' : 'not ready');
        const reporter = deps.dependencies.reporter(check.name);
        if (error === undefined) reporter.up();
        else reporter.down(error);
      },
    });
  });
  app.get('/ready', async (_request, reply) => {
    const report = await readiness();
    return reply.status(report.ready ? 200 : 503).send({
      status: report.ready ? 'ready' : 'not_ready',
      service: deps.name,
      checks: report.checks,
      ...(report.degraded ? { degraded: report.degraded } : {}),
    });
  });
  const metricsText = reusedResult(deps.cacheMs, () => deps.metrics.render());
  app.get('/metrics', async (_request, reply) =>
    reply.type(deps.metrics.contentType).send(await metricsText()),
  );
}

/** Apollo's logger interface, backed by the service's pino logger. */
function apolloLogger(logger: Logger) {
  return {
    debug: (message: string) => logger.debug(message),
    info: (message: string) => logger.info(message),
    warn: (message: string) => logger.warn(message),
    error: (message: string) => logger.error(message),
  };
}
