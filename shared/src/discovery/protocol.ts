import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

// The orchestrator's registry API, shared by the registry (orchestrator), the services that register (the server
// kit) and the clients that route (gateway, service-to-service calls). Every body is validated with these schemas
// on both sides.

/** Where the registry API lives on the orchestrator. */
export const REGISTRY_API = {
  instances: '/v1/instances',
  instance: (id: string) => `/v1/instances/${encodeURIComponent(id)}`,
  heartbeat: (id: string) => `/v1/instances/${encodeURIComponent(id)}/heartbeat`,
  routing: '/v1/routing',
  supergraph: '/v1/supergraph',
  reports: '/v1/reports',
  status: '/v1/status',
} as const;

/** The orchestrator's default port and URL (embedded default). */
export const ORCHESTRATOR_PORT = 3100;
export const DEFAULT_ORCHESTRATOR_URL = `http://127.0.0.1:${ORCHESTRATOR_PORT}`;

/** Longest a routing long-poll may wait for a change, in seconds (`GET /v1/routing?wait=`). */
export const MAX_ROUTING_WAIT_SECONDS = 30;

/** A service's name: `users`, `auth`, `gateway` (lower case, digits and dashes). */
export const serviceNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,62}$/, 'must be a lower-case service name');

/** Paths the gateway serves itself: no service may claim them. */
export const RESERVED_ROUTE_PREFIXES = ['/graphql', '/health', '/ready', '/metrics', '/mcp'] as const;

/** A public HTTP route a service offers through the gateway's port (uploads, SSE streams, WebSockets). */
export const routeDeclarationSchema = z.object({
  /** Path prefix on the gateway, forwarded unchanged: `/media/uploads` serves `/media/uploads` and below. */
  prefix: z
    .string()
    .max(200)
    .regex(/^\/[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/, 'must be a path like /media/uploads')
    .refine(
      (prefix) => !RESERVED_ROUTE_PREFIXES.some((r) => prefix === r || prefix.startsWith(`${r}/`)),
      'is reserved by the gateway',
    ),
  /** Also forward WebSocket upgrades under the prefix. */
  websocket: z.boolean().default(false),
});
export type RouteDeclaration = z.infer<typeof routeDeclarationSchema>;

export const instanceKindSchema = z.enum(['subgraph', 'gateway']);
export type InstanceKind = z.infer<typeof instanceKindSchema>;

/** `POST /v1/instances`: what an instance tells the registry about itself. */
export const registrationSchema = z.object({
  service: serviceNameSchema,
  kind: instanceKindSchema.default('subgraph'),
  /** Unique per process (a restarted process registers under a new id). */
  instanceId: z.string().regex(/^[A-Za-z0-9._:#-]{1,128}$/, 'must be an instance id'),
  /** Base URL other processes reach the instance at, e.g. `http://127.0.0.1:3001`. */
  url: z.url({ protocol: /^https?$/ }),
  /** Path of its GraphQL endpoint (subgraphs). */
  graphqlPath: z.string().startsWith('/').default('/graphql'),
  version: z.string().max(64).default('0.0.0'),
  /** The subgraph's SDL (subgraphs): the orchestrator composes live supergraphs from it in development. */
  sdl: z.string().max(2_000_000).optional(),
  /** `sdlHash(sdl)`: compared with the committed supergraph's subgraph in production. */
  sdlHash: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  startedAt: z.iso.datetime({ offset: true }),
  routes: z.array(routeDeclarationSchema).max(50).default([]),
  /** The supervisor's name for the process slot (`users#2`), set through AIVA_INSTANCE_SLOT. */
  slot: z.string().max(100).optional(),
  pid: z.number().int().positive().optional(),
});
export type Registration = z.infer<typeof registrationSchema>;
export type RegistrationInput = z.input<typeof registrationSchema>;

/** The registry's answer to a registration: how often to heartbeat, and when a silent instance is dropped. */
export const registrationAcceptedSchema = z.object({
  instanceId: z.string(),
  heartbeatIntervalMs: z.number().int().positive(),
  ttlMs: z.number().int().positive(),
});
export type RegistrationAccepted = z.infer<typeof registrationAcceptedSchema>;

/** What an instance reports about its own load with each heartbeat. */
export const instanceLoadSchema = z.object({
  /** Requests being served right now. */
  inflight: z.number().int().min(0),
  /** Requests served since the process started (a counter). */
  requestsTotal: z.number().int().min(0),
});
export type InstanceLoad = z.infer<typeof instanceLoadSchema>;

/** `PUT /v1/instances/:id/heartbeat`. An unknown id answers 404: the instance registers again. */
export const heartbeatSchema = z.object({ load: instanceLoadSchema.optional() });
export type Heartbeat = z.infer<typeof heartbeatSchema>;

export const breakerStateSchema = z.enum(['closed', 'open', 'half-open']);
export type BreakerState = z.infer<typeof breakerStateSchema>;

/** Passive health signals of one instance, as one gateway saw them since its last report (deltas). */
export const instanceTrafficSchema = z.object({
  instanceId: z.string().min(1).max(128),
  service: serviceNameSchema,
  requests: z.number().int().min(0),
  /** Responses that failed: HTTP 5xx or a body that is not GraphQL. */
  errors: z.number().int().min(0),
  /** Requests that never got an answer: refused, reset, DNS. */
  connectionFailures: z.number().int().min(0),
  timeouts: z.number().int().min(0),
  /** Sum of the latencies of `requests`, in seconds. */
  latencySecondsSum: z.number().min(0),
  breaker: breakerStateSchema,
});
export type InstanceTraffic = z.infer<typeof instanceTrafficSchema>;

/** `POST /v1/reports`: a gateway's passive signals since its previous report. */
export const trafficReportSchema = z.object({
  reporter: z.string().min(1).max(128),
  instances: z.array(instanceTrafficSchema).max(10_000),
  /**
   * How many seconds the deltas cover (request rates are `requests / windowSeconds`); default: the registry's
   * heartbeat interval, which is also the reporter's default interval.
   */
  windowSeconds: z.number().positive().max(3_600).optional(),
});
export type TrafficReport = z.infer<typeof trafficReportSchema>;

/** One instance a client may send requests to. */
export const routableInstanceSchema = z.object({
  id: z.string(),
  /** Base URL (`http://127.0.0.1:3001`). */
  url: z.string(),
  /** Full URL of its GraphQL endpoint. */
  graphqlUrl: z.string(),
});
export type RoutableInstance = z.infer<typeof routableInstanceSchema>;

/**
 * `GET /v1/routing`: the healthy, routable instances of every service, the public routes, and the supergraph the
 * gateways should serve. `etag` changes whenever any of it changes.
 */
export const routingTableSchema = z.object({
  etag: z.string(),
  generatedAt: z.iso.datetime({ offset: true }),
  /** The supergraph to serve (its SDL at `GET /v1/supergraph`); null until one composed. */
  supergraph: z.object({ hash: z.string(), mode: z.enum(['committed', 'live']) }).nullable(),
  services: z.record(z.string(), z.object({ instances: z.array(routableInstanceSchema) })),
  routes: z.array(routeDeclarationSchema.extend({ service: serviceNameSchema })),
  /**
   * True while a registry that started with no instances (its memory store, or an empty Redis) may still be
   * hearing from instances that were running before it: for one instance TTL and their first probes, the live
   * ones register again. Until then the table may lack instances that serve, so a follower keeps the ones it knew
   * (see `routingDuringRebuild`). Absent otherwise.
   */
  rebuilding: z.boolean().optional(),
});
export type RoutingTable = z.infer<typeof routingTableSchema>;

export const healthStateSchema = z.enum(['starting', 'healthy', 'unhealthy']);
export type HealthState = z.infer<typeof healthStateSchema>;

/** How an instance came to be known. */
export const discoverySourceSchema = z.enum(['register', 'dns', 'static']);
export type DiscoverySource = z.infer<typeof discoverySourceSchema>;

/** `GET /v1/instances`: everything the registry knows about an instance. */
export const instanceViewSchema = z.object({
  service: z.string(),
  kind: instanceKindSchema,
  instanceId: z.string(),
  url: z.string(),
  graphqlUrl: z.string(),
  version: z.string(),
  sdlHash: z.string().nullable(),
  startedAt: z.string(),
  lastHeartbeat: z.string(),
  source: discoverySourceSchema,
  health: healthStateSchema,
  /** Why it is not healthy (probe failure, passive ejection), for people. */
  healthReason: z.string().nullable(),
  /** `mismatch`: serves an SDL other than the supergraph's (never routed to). */
  schema: z.enum(['ok', 'mismatch', 'unknown']),
  /** In the routing table right now. */
  routable: z.boolean(),
  /** The worst breaker state gateways report for it. */
  breaker: breakerStateSchema,
  load: instanceLoadSchema.nullable(),
  /** Requests per second through the gateways (last report window). */
  requestRate: z.number(),
  routes: z.array(routeDeclarationSchema),
  slot: z.string().nullable(),
});
export type InstanceView = z.infer<typeof instanceViewSchema>;

/** The body of `GET /v1/instances[?service=]`. */
export const instanceListSchema = z.object({ instances: z.array(instanceViewSchema) });
export type InstanceList = z.infer<typeof instanceListSchema>;

/** The answer to `POST /v1/reports`: how many entries were applied, and the instance ids the registry ignored. */
export const reportAcceptedSchema = z.object({
  accepted: z.number().int().min(0),
  unknown: z.array(z.string()),
});
export type ReportAccepted = z.infer<typeof reportAcceptedSchema>;

const REGISTRY_TOKEN_CONTEXT = 'aiva.registry.v1:';

/**
 * The registry credential of one service: HMAC-SHA256 of the service name under the orchestrator's secret
 * (`REGISTRY_SECRET`), base64url. A token only registers instances of its own service, so a compromised users
 * process cannot pose as auth, and nobody without a token can add an instance or redirect traffic.
 */
export function registryToken(secret: string, service: string): string {
  return createHmac('sha256', secret).update(`${REGISTRY_TOKEN_CONTEXT}${service}`).digest('base64url');
}

/** Whether `token` is the registry credential of `service` under `secret` (constant-time comparison). */
export function isRegistryToken(secret: string, service: string, token: string): boolean {
  const expected = Buffer.from(registryToken(secret, service));
  const given = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
