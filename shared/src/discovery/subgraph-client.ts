import { AivaError, ERROR_CODES, type ErrorCode, type ErrorDetails } from '../errors.js';
import { routedCall } from './routed-call.js';
import type { ServiceRouter } from './service-router.js';

/** The extensions of another subgraph's error passed on with its code (all of them plain facts, no internals). */
const PASSED_EXTENSIONS = ['field', 'reason', 'limit', 'used', 'retryAfter'] as const;
const KNOWN_CODES = new Set<string>(ERROR_CODES);

interface GraphQLBody<T> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

export interface SubgraphCall {
  router: ServiceRouter;
  /** The subgraph called, by its registry name (`media`). */
  service: string;
  /** The caller's bearer token: a service token (see `createServiceTokenSource`). */
  token: string;
  query: string;
  variables?: Record<string, unknown>;
  /**
   * Whether another instance may be tried when the first cannot be reached: queries yes, mutations no (one that
   * reached an instance may have done its work).
   */
  retryable: boolean;
  /** Deadline of one attempt; default 10 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * One GraphQL operation on another subgraph, sent to an instance from the routing table (never the public gateway,
 * whose client limits it would share). The subgraph's first error comes back as an AivaError with the same code,
 * message and plain extensions (`field`, `reason`, `limit`, `used`, `retryAfter`), so a person sees media's
 * "quota exceeded" as media said it; an unknown code becomes INTERNAL_SERVER_ERROR. No answer at all:
 * INTERNAL_SERVER_ERROR `The <service> service is unavailable` with `serviceName`.
 */
export async function callSubgraph<T>(call: SubgraphCall): Promise<T> {
  const unavailable = () =>
    new AivaError('INTERNAL_SERVER_ERROR', `The ${call.service} service is unavailable`, {
      serviceName: call.service,
    });
  let body: GraphQLBody<T> | undefined;
  try {
    body = await routedCall(
      call.router,
      call.service,
      {
        retryable: call.retryable,
        timeoutMs: call.timeoutMs ?? 10_000,
        ...(call.signal ? { signal: call.signal } : {}),
      },
      async (endpoint, signal) => {
        const response = await fetch(endpoint.graphqlUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${call.token}` },
          body: JSON.stringify({ query: call.query, variables: call.variables ?? {} }),
          signal,
        });
        if (response.status === 503 && call.retryable) {
          await response.body?.cancel();
          return { value: undefined, outcome: 'error', refused: true };
        }
        const parsed = (await response.json().catch(() => undefined)) as GraphQLBody<T> | undefined;
        return { value: parsed, outcome: response.status >= 500 ? 'error' : 'success' };
      },
    );
  } catch {
    if (call.signal?.aborted) throw call.signal.reason;
    throw unavailable();
  }
  if (!body) throw unavailable();
  const error = body.errors?.[0];
  if (error) throw passedOn(error);
  if (!body.data) throw new AivaError('INTERNAL_SERVER_ERROR', `The ${call.service} service gave no answer`);
  return body.data;
}

/** Another subgraph's error as ours: its code when known, its message, its plain extensions. */
function passedOn(error: { message: string; extensions?: Record<string, unknown> }): AivaError {
  const extensions = error.extensions ?? {};
  const code = KNOWN_CODES.has(String(extensions.code))
    ? (extensions.code as ErrorCode)
    : 'INTERNAL_SERVER_ERROR';
  const details: Record<string, string | number> = {};
  for (const name of PASSED_EXTENSIONS) {
    const value = extensions[name];
    if (typeof value === 'string' || typeof value === 'number') details[name] = value;
  }
  return new AivaError(code, error.message, details as ErrorDetails);
}
