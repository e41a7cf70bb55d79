import type { CallOutcome, Endpoint, ServiceRouter } from './service-router.js';

/** What one attempt on one instance produced. */
export interface AttemptResult<T> {
  value: T;
  /** How the instance did (its breaker and the traffic report count it). */
  outcome: CallOutcome;
  /** The instance refused the work without doing it (HTTP 503 while it shuts down): try another. */
  refused?: boolean;
}

/** A service could not be reached: no instance, or every attempt failed to connect or timed out. */
export class ServiceUnavailableError extends Error {
  constructor(
    readonly service: string,
    readonly reason: 'no_instance' | 'connection' | 'timeout',
    options?: { cause?: unknown },
  ) {
    super(`The ${service} service is unavailable`, options);
    this.name = 'ServiceUnavailableError';
  }
}

export interface RoutedCallOptions {
  /**
   * Whether the request may be sent again to another instance when the first one could not be reached: true
   * for queries, never for mutations (a mutation that reached an instance may have done its work).
   */
  retryable: boolean;
  /** Deadline of one attempt, in ms. */
  timeoutMs: number;
  /** The caller's own signal (its request was cancelled). */
  signal?: AbortSignal;
}

/** Whether an error thrown by an HTTP client is a timeout of ours (rather than a connection failure). */
function isTimeout(error: unknown, deadline: AbortSignal): boolean {
  const name = (error as { name?: string; code?: string } | null)?.name;
  const code = (error as { code?: string } | null)?.code;
  return (
    (deadline.aborted && (name === 'AbortError' || name === 'TimeoutError')) ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  );
}

/**
 * Sends one request to a service through the router: picks an instance, bounds the attempt by `timeoutMs`,
 * reports the outcome to the instance's breaker, and — when `retryable` — tries once more on another instance
 * after a connection failure or a refusal (a request that never started work). `attempt` does the I/O; it
 * throws for transport failures and returns the instance's answer otherwise.
 */
export async function routedCall<T>(
  router: ServiceRouter,
  service: string,
  options: RoutedCallOptions,
  attempt: (endpoint: Endpoint, signal: AbortSignal) => Promise<AttemptResult<T>>,
): Promise<T> {
  const tried = new Set<string>();
  const maxAttempts = options.retryable ? 2 : 1;
  let lastFailure: ServiceUnavailableError | undefined;
  for (let attemptNo = 1; attemptNo <= maxAttempts; attemptNo++) {
    let lease: ReturnType<ServiceRouter['pick']>;
    try {
      lease = router.pick(service, tried);
    } catch {
      throw lastFailure ?? new ServiceUnavailableError(service, 'no_instance');
    }
    tried.add(lease.endpoint.id);
    const deadline = AbortSignal.timeout(options.timeoutMs);
    const signal = options.signal ? AbortSignal.any([deadline, options.signal]) : deadline;
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    let result: AttemptResult<T>;
    try {
      result = await attempt(lease.endpoint, signal);
    } catch (error) {
      if (options.signal?.aborted) {
        lease.done('success', elapsed());
        throw error;
      }
      const timedOut = isTimeout(error, deadline);
      lease.done(timedOut ? 'timeout' : 'connection', elapsed());
      lastFailure = new ServiceUnavailableError(service, timedOut ? 'timeout' : 'connection', {
        cause: error,
      });
      // A timed-out request may still be running there: sending it again would double the work.
      if (timedOut) throw lastFailure;
      continue;
    }
    lease.done(result.outcome, elapsed());
    if (result.refused && attemptNo < maxAttempts) continue;
    return result.value;
  }
  throw lastFailure ?? new ServiceUnavailableError(service, 'connection');
}
