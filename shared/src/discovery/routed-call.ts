import { setMaxListeners } from 'node:events';
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
  /** The caller's own signal (its request was cancelled, or its budget is spent). */
  signal?: AbortSignal;
  /**
   * When `signal` aborts at the latest (epoch ms): the deadline of the caller's budget. An attempt that would
   * time out no earlier is bounded by `signal` alone, without a timer of its own.
   */
  deadline?: number;
}

/** The signal one attempt runs with, and whether it was its own timeout that aborted it. */
interface AttemptSignal {
  signal: AbortSignal;
  timedOut(): boolean;
  /** Stops the timer and the link to the caller's signal (the attempt is over). */
  dispose(): void;
}

const NOT_TIMED_OUT = () => false;
const NOTHING_TO_DISPOSE = () => {};

/**
 * Aborts when `timeoutMs` passes (with a `TimeoutError`, as `AbortSignal.timeout` does) or when the caller's
 * signal aborts (with its reason). One controller, one timer and one listener, all released when the attempt
 * ends: `AbortSignal.timeout` + `AbortSignal.any` on every subgraph call showed in the gateway's profiles (their
 * weak references and finalization stay until garbage collection). When the caller's signal is bound to end
 * first (`deadline`), it is the attempt's signal as it is.
 */
function attemptSignal(options: RoutedCallOptions): AttemptSignal {
  const caller = options.signal;
  if (caller && options.deadline !== undefined && options.deadline <= Date.now() + options.timeoutMs) {
    return { signal: caller, timedOut: NOT_TIMED_OUT, dispose: NOTHING_TO_DISPOSE };
  }
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
  }, options.timeoutMs);
  // Like AbortSignal.timeout: a pending attempt does not keep the process alive.
  timer.unref();
  if (!caller) {
    return { signal: controller.signal, timedOut: () => timedOut, dispose: () => clearTimeout(timer) };
  }
  const follow = () => controller.abort(caller.reason);
  if (caller.aborted) follow();
  else {
    // One listener per attempt in flight, removed when it ends: a wide query plan runs many at once, which is
    // not the leak Node warns of past 10.
    setMaxListeners(0, caller);
    caller.addEventListener('abort', follow, { once: true });
  }
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    dispose: () => {
      clearTimeout(timer);
      caller.removeEventListener('abort', follow);
    },
  };
}

/** Whether an error thrown by an HTTP client is a timeout of ours (rather than a connection failure). */
function isTimeout(error: unknown, deadline: AttemptSignal): boolean {
  const name = (error as { name?: string; code?: string } | null)?.name;
  const code = (error as { code?: string } | null)?.code;
  return (
    (deadline.timedOut() && (name === 'AbortError' || name === 'TimeoutError')) ||
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
    const deadline = attemptSignal(options);
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    let result: AttemptResult<T>;
    try {
      result = await attempt(lease.endpoint, deadline.signal);
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
    } finally {
      deadline.dispose();
    }
    lease.done(result.outcome, elapsed());
    if (result.refused && attemptNo < maxAttempts) continue;
    return result.value;
  }
  throw lastFailure ?? new ServiceUnavailableError(service, 'connection');
}
