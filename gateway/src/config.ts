import { commonEnvSchema, DEFAULT_BODY_LIMIT_BYTES, env, tokenEnvSchema } from '@aiva/shared';
import { z } from 'zod';

export const gatewayEnvSchema = commonEnvSchema.extend({
  ...tokenEnvSchema.shape,
  GATEWAY_PORT: env.port(3000),
  /** The composed supergraph to serve; default: supergraph.graphql at the repository root. */
  SUPERGRAPH_PATH: z.string().optional(),
  /** Comma-separated origins allowed by CORS; `*` for any; empty for none (same-origin only). */
  CORS_ORIGINS: env.list(''),
  /** Largest accepted request body, in bytes. */
  BODY_LIMIT_BYTES: env.positiveInt(DEFAULT_BODY_LIMIT_BYTES),
  /**
   * Longest wait for one subgraph request, in milliseconds. A request never waits past its own budget
   * either: GRAPHQL_REQUEST_TIMEOUT_MS (the gateway's budget of one client request, shared with the subgraphs'
   * setting of the same name), of which each subgraph request gets what is left, sent as `x-aiva-deadline-ms`.
   */
  SUBGRAPH_TIMEOUT_MS: env.positiveInt(10_000),
  /** How long an automatic persisted query stays registered, in seconds. */
  APQ_TTL_SECONDS: env.positiveInt(24 * 60 * 60),
  /**
   * Comma-separated addresses or CIDRs of the proxies in front of the gateway whose X-Forwarded-For is
   * believed (e.g. `10.0.0.0/8`); empty for none: the client is the peer of the TCP connection.
   */
  TRUST_PROXY: env.list(''),
  /** Requests per window allowed to one client (a signed-in user, else an IP address); 0 turns limiting off. */
  RATE_LIMIT_MAX: z.coerce.number().int().min(0).default(600),
  /** The rate limit window, in seconds. */
  RATE_LIMIT_WINDOW_SECONDS: env.positiveInt(60),
  /**
   * Responses of at least this many bytes are compressed, with `br` or `gzip` as the client's accept-encoding
   * asks (JSON and `/metrics` only; never server-sent events nor the service routes, which pass through as the
   * service sent them); 0 turns compression off.
   */
  COMPRESSION_THRESHOLD_BYTES: z.coerce.number().int().min(0).default(1024),
  /**
   * Identical subgraph fetches of queries in flight at once (same subgraph, document, variables and caller
   * credentials) share one request to the subgraph; `false` sends each on its own. Mutations never share.
   */
  /**
   * Which mutations MCP callers may run (`/mcp`, `pnpm mcp`): `none` (default), `explicit` (only the stored
   * operations' tools), `all` (also through `execute`).
   */
  MCP_MUTATIONS: z.enum(['none', 'explicit', 'all']).default('none'),
  /** MCP tool results longer than this many characters are cut (`execute`) or refused with a note. */
  MCP_MAX_RESULT_CHARS: env.positiveInt(100_000),
  /**
   * Host header values `/mcp` accepts (`name` or `name:port`, comma-separated); default: the loopback names when
   * HOST is a loopback address (DNS rebinding), else any (set it behind a public name).
   */
  MCP_ALLOWED_HOSTS: env.list(''),
  /**
   * Size of the query plan cache, in MiB (plans measured by their JSON size). The operations of the
   * `operations/` folders are planned into it whenever a supergraph is loaded.
   */
  QUERY_PLAN_CACHE_MIB: env.positiveInt(30),
  DEDUPE_SUBGRAPH_FETCHES: z
    .enum(['true', 'false'])
    .default('true')
    .transform((value) => value === 'true'),
});
export type GatewayConfig = z.infer<typeof gatewayEnvSchema>;
