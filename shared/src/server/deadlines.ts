import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { type CommonEnv, commonEnvSchema, loadConfig } from '../config.js';
import { AivaError } from '../errors.js';

/**
 * The time budget a caller gives a request, in whole milliseconds left when it was sent: the gateway sends each
 * subgraph request the time it will wait for the answer. A server only ever shortens its own limit with it.
 */
export const DEADLINE_HEADER = 'x-aiva-deadline-ms';

/** Default budget of one GraphQL request (GRAPHQL_REQUEST_TIMEOUT_MS). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

/**
 * How long after its deadline a request may still take to answer with what it has (the fields that failed
 * with DEADLINE_EXCEEDED, the others resolved) before it is answered with DEADLINE_EXCEEDED alone.
 */
export const DEADLINE_GRACE_MS = 250;

/** The HTTP deadlines of the server kit (fastify `requestTimeout`, `keepAliveTimeout`, `connectionTimeout`). */
export interface ServerTimeouts {
  /** Budget of one GraphQL request, from its arrival (GRAPHQL_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs: number;
  /** How long a client may take to send a whole request (HTTP_REQUEST_TIMEOUT_MS). */
  httpRequestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open (HTTP_KEEP_ALIVE_TIMEOUT_MS). */
  keepAliveTimeoutMs: number;
  /** How long a connection may see no traffic at all (HTTP_CONNECTION_TIMEOUT_MS). */
  connectionTimeoutMs: number;
}

type TimeoutEnv = Pick<
  CommonEnv,
  | 'GRAPHQL_REQUEST_TIMEOUT_MS'
  | 'HTTP_REQUEST_TIMEOUT_MS'
  | 'HTTP_KEEP_ALIVE_TIMEOUT_MS'
  | 'HTTP_CONNECTION_TIMEOUT_MS'
>;

/** The server deadlines of a service's configuration. */
export function serverTimeoutsOf(config: TimeoutEnv): ServerTimeouts {
  return {
    requestTimeoutMs: config.GRAPHQL_REQUEST_TIMEOUT_MS,
    httpRequestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    connectionTimeoutMs: config.HTTP_CONNECTION_TIMEOUT_MS,
  };
}

const timeoutEnvSchema = commonEnvSchema.pick({
  GRAPHQL_REQUEST_TIMEOUT_MS: true,
  HTTP_REQUEST_TIMEOUT_MS: true,
  HTTP_KEEP_ALIVE_TIMEOUT_MS: true,
  HTTP_CONNECTION_TIMEOUT_MS: true,
});

/** The server deadlines of the process environment, for servers whose options do not carry them. */
export function serverTimeoutsFromEnv(env: Record<string, string | undefined> = process.env): ServerTimeouts {
  return serverTimeoutsOf(loadConfig(timeoutEnvSchema, env));
}

/**
 * The budget of a request in ms: the server's own limit, shortened by a caller's `x-aiva-deadline-ms` when that is
 * a whole number of milliseconds below it (a larger or malformed value changes nothing: it is never trusted to
 * lengthen the limit).
 */
export function budgetMsOf(header: string | string[] | undefined, ownLimitMs: number): number {
  if (typeof header !== 'string') return ownLimitMs;
  const value = header.trim();
  if (!/^\d{1,12}$/.test(value)) return ownLimitMs;
  return Math.min(ownLimitMs, Number(value));
}

/** A request's deadline and the signal that aborts when it passes. */
export interface RequestBudget {
  /** When the budget ends (epoch ms). */
  deadline: number;
  /** Aborts when the budget ends (with a DEADLINE_EXCEEDED error as its reason). */
  signal: AbortSignal;
  /** Stops the timer (the request is answered). */
  dispose(): void;
}

export function startBudget(budgetMs: number, now: number = Date.now()): RequestBudget {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(deadlineExceeded()), Math.max(0, budgetMs));
  timer.unref();
  return { deadline: now + budgetMs, signal: controller.signal, dispose: () => clearTimeout(timer) };
}

/**
 * The error of work whose budget is spent: `INTERNAL_SERVER_ERROR` (the fixed vocabulary) with
 * `reason: DEADLINE_EXCEEDED`.
 */
export function deadlineExceeded(
  message = 'The request ran out of time',
  options: { status?: number } = {},
): AivaError {
  return new AivaError('INTERNAL_SERVER_ERROR', message, {
    reason: 'DEADLINE_EXCEEDED',
    ...(options.status ? { http: { status: options.status } } : {}),
  });
}

/** Whether an error is (or wraps) a DEADLINE_EXCEEDED error. */
export function isDeadlineExceeded(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    if (current instanceof AivaError && current.extensions.reason === 'DEADLINE_EXCEEDED') return true;
    current =
      (current as { originalError?: unknown; cause?: unknown }).originalError ??
      (current as { cause?: unknown }).cause;
  }
  return false;
}

/** Where a request's budget ran out: before execution started, or during it. */
export type DeadlineStage = 'refused' | 'abandoned';

/**
 * Stops GraphQL work whose budget is spent: an operation whose deadline has passed before execution is refused,
 * and once it passes during execution every field that has not started yet fails with DEADLINE_EXCEEDED instead
 * of running (so no further resolver, store call or subgraph call is started for it). Resolvers that wait on
 * I/O get `context.signal`, which aborts at the deadline.
 */
export function deadlinePlugin<TContext extends BaseContext & { deadline: number }>(
  onExceeded?: (stage: DeadlineStage) => void,
): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ contextValue }) {
          if (Date.now() < contextValue.deadline) return;
          onExceeded?.('refused');
          throw deadlineExceeded('The request ran out of time before it started', { status: 504 });
        },
        async executionDidStart() {
          let reported = false;
          return {
            willResolveField({ contextValue }) {
              if (Date.now() < contextValue.deadline) return;
              if (!reported) {
                reported = true;
                onExceeded?.('abandoned');
              }
              throw deadlineExceeded();
            },
          };
        },
      };
    },
  };
}
