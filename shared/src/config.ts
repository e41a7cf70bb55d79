import { join } from 'node:path';
import { z } from 'zod';

/** Thrown when the environment does not satisfy a service's configuration schema. Names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Empty variables count as unset, so `FOO=` falls back to the default instead of failing. */
function withoutEmpty(env: Env): Env {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
}

/**
 * Parses the environment once with a zod object schema whose keys are variable names.
 * Throws ConfigError naming each missing or invalid variable (never echoing its value: it may be a secret).
 */
export function loadConfig<S extends z.ZodType>(schema: S, env: Env = process.env): z.infer<S> {
  const result = schema.safeParse(withoutEmpty(env));
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    const what = issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message;
    return `${name}: ${what}`;
  });
  throw new ConfigError(problems);
}

/** Like loadConfig, but a bad configuration stops the process with the message on stderr (exit code 78). */
export function loadConfigOrExit<S extends z.ZodType>(schema: S, env: Env = process.env): z.infer<S> {
  try {
    return loadConfig(schema, env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
}

/** Building blocks for service config schemas. */
export const env = {
  port: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  url: (protocols: string[]) =>
    z
      .string()
      .url()
      .refine((value) => protocols.some((p) => value.startsWith(`${p}://`)), {
        message: `must be a URL starting with ${protocols.map((p) => `${p}://`).join(' or ')}`,
      }),
  positiveInt: (fallback: number) => z.coerce.number().int().positive().default(fallback),
  list: (fallback: string) =>
    z
      .string()
      .default(fallback)
      .transform((value) =>
        value
          .split(',')
          .map((item) => item.trim())
          .filter(Boolean),
      ),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

/** A limit: a whole number >= 0, where 0 turns the limit off. */
const limit = (fallback: number) => z.coerce.number().int().min(0).default(fallback);

/** Variables every AIVA process understands. */
export const commonEnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: env.logLevel(),
  HOST: z.string().default('127.0.0.1'),
  DATA_DIR: z.string().default('.data'),
  NATS_URL: env.url(['nats', 'tls', 'ws', 'wss']).optional(),
  REDIS_URL: env.url(['redis', 'rediss']).optional(),
  /**
   * Without NATS_URL: the event log every service on this machine shares (SQLite, WAL); default
   * `<DATA_DIR>/events.sqlite`.
   */
  EVENTS_DB_FILE: z.string().optional(),
  /** Without REDIS_URL: the cache every service on this machine shares (SQLite); default `<DATA_DIR>/cache.sqlite`. */
  CACHE_DB_FILE: z.string().optional(),
  /** The orchestrator's registry: services register there, gateways read the routing table from it. */
  ORCHESTRATOR_URL: env.url(['http', 'https']).default('http://127.0.0.1:3100'),
  /** This service's registry credential (`registryToken(REGISTRY_SECRET, service)`); unset: no registration. */
  REGISTRY_TOKEN: z.string().optional(),
  /**
   * This service's credential for service tokens from auth: `pnpm orchestrator service-credential <service>` with
   * SERVICE_SECRET set; unset: derived from SERVICE_SECRET or the machine's `<DATA_DIR>/service-secret.json`.
   */
  SERVICE_CREDENTIAL: z.string().optional(),
  /**
   * The secret service credentials derive from (at least 32 characters). In production only auth holds it (it
   * checks credentials); every other service is given its SERVICE_CREDENTIAL instead. Unset: the machine's
   * `<DATA_DIR>/service-secret.json`, created on first use (the embedded default of `pnpm start`).
   */
  SERVICE_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** The host other processes reach this instance at; default HOST (the machine's hostname when HOST is 0.0.0.0). */
  ADVERTISE_HOST: z.string().optional(),
  /** Set by the orchestrator's supervisor: the process slot (`users#2`) this instance runs in. */
  AIVA_INSTANCE_SLOT: z.string().optional(),
  // Operation limits of every GraphQL server (gateway and subgraphs); 0 turns one off. See server/operation-limits.
  /** Deepest field nesting of an operation (fragments do not count as a level). */
  GRAPHQL_MAX_DEPTH: limit(12),
  /** Aliased fields in an operation (aliased `__typename` is free). */
  GRAPHQL_MAX_ALIASES: limit(30),
  /** Root fields (distinct response names) of a query or subscription. */
  GRAPHQL_MAX_ROOT_FIELDS: limit(20),
  /** Root fields of a mutation: each one is a separate write. */
  GRAPHQL_MAX_MUTATIONS: limit(5),
  /** Directives in an operation, fragments included. */
  GRAPHQL_MAX_DIRECTIVES: limit(50),
  /** Lexical tokens of a document; the parser stops at the limit (comments do not count). */
  GRAPHQL_MAX_TOKENS: limit(15_000),
  /** Estimated cost of an operation (graphql-armor's cost: objects 2, scalars 1, ×1.5 per level, ×first/last). */
  GRAPHQL_MAX_COST: limit(20_000),
  /** Largest query text an automatic persisted query may register, in bytes. */
  APQ_MAX_QUERY_BYTES: limit(32 * 1024),
  /**
   * Introspection and "did you mean" suggestions in errors: `true` or `false`; unset: on in development only.
   */
  GRAPHQL_INTROSPECTION: z
    .enum(['true', 'false'], { message: 'must be true or false' })
    .transform((value) => value === 'true')
    .optional(),
  // Deadlines (see server/deadlines.ts and cache/redis-connection.ts).
  /**
   * Time budget of one GraphQL request, from its arrival, at the gateway and in each subgraph: past it the
   * operation is abandoned (DEADLINE_EXCEEDED, HTTP 504 when nothing could be answered). The gateway sends each
   * subgraph request what is left of its budget (`x-aiva-deadline-ms`), which can only shorten the subgraph's.
   */
  GRAPHQL_REQUEST_TIMEOUT_MS: env.positiveInt(15_000),
  /** How long a client may take to send a whole request (headers and body) before it is cut off. */
  HTTP_REQUEST_TIMEOUT_MS: env.positiveInt(30_000),
  /** How long an idle keep-alive connection is kept open (above a load balancer's idle timeout). */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: env.positiveInt(72_000),
  /** How long a connection may see no traffic at all (a client that stopped reading) before it is closed. */
  HTTP_CONNECTION_TIMEOUT_MS: env.positiveInt(120_000),
  /**
   * Deadline of one Redis command: past it the command fails (a soft dependency fails open) and the connection is
   * replaced, so the next commands fail at once instead of waiting on a server that does not answer.
   */
  REDIS_COMMAND_TIMEOUT_MS: env.positiveInt(1_000),
  /** Deadline of opening a Redis connection (TCP and handshake); reconnects back off up to 2 s. */
  REDIS_CONNECT_TIMEOUT_MS: env.positiveInt(5_000),
  // Events (see events/service-events.ts `eventOptionsOf`).
  /** Deadline of one NATS publish (JetStream's acknowledgement); past it the event stays in the outbox. */
  NATS_PUBLISH_TIMEOUT_MS: env.positiveInt(5_000),
  /** Deadline of one NATS connection attempt and of JetStream setup calls; reconnects back off up to 5 s. */
  NATS_CONNECT_TIMEOUT_MS: env.positiveInt(5_000),
  /**
   * JetStream's duplicate window of the event stream when this process creates it (an existing stream keeps its
   * own): a republished event id within it is dropped by the server. Consumers are idempotent beyond it.
   */
  NATS_DUPLICATE_WINDOW_MS: env.positiveInt(120_000),
  /** Failed publishes of one outbox row (while the bus is up) before it is quarantined and the relay moves on. */
  OUTBOX_MAX_ATTEMPTS: env.positiveInt(10),
  /** The outbox relay lease: of several instances of a service only its holder publishes; a dead one's expires. */
  OUTBOX_RELAY_LEASE_MS: env.positiveInt(30_000),
});
export type CommonEnv = z.infer<typeof commonEnvSchema>;

/** The Redis deadlines of a process's configuration, as the Redis adapters take them. */
export function redisTimeoutsOf(
  config: Pick<CommonEnv, 'REDIS_COMMAND_TIMEOUT_MS' | 'REDIS_CONNECT_TIMEOUT_MS'>,
): {
  commandTimeoutMs: number;
  connectTimeoutMs: number;
} {
  return {
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS,
  };
}

/** The embedded event log file of a process's configuration (used without NATS_URL). */
export function embeddedEventsFile(config: Pick<CommonEnv, 'DATA_DIR' | 'EVENTS_DB_FILE'>): string {
  return config.EVENTS_DB_FILE ?? join(config.DATA_DIR, 'events.sqlite');
}

/** The embedded cache file of a process's configuration (used without REDIS_URL). */
export function embeddedCacheFile(config: Pick<CommonEnv, 'DATA_DIR' | 'CACHE_DB_FILE'>): string {
  return config.CACHE_DB_FILE ?? join(config.DATA_DIR, 'cache.sqlite');
}
