import { setTimeout as sleep } from 'node:timers/promises';
import { APICallError, RetryError } from 'ai';
import { ProviderError, type ProviderErrorKind, type ProviderFailure, safeDetail } from './errors.js';

/** What the policy needs of a candidate: who is called. */
export interface PolicyCandidate {
  provider: string;
  model: string;
}

/** What the policy did after one attempt, for logs and metrics. */
export type AttemptOutcome = 'ok' | 'retry' | 'fallback' | 'fail';

/** One attempt's end. Carries no prompt, key or provider text beyond the sanitized error. */
export interface AttemptEvent {
  provider: string;
  model: string;
  /** 1 for a candidate's first attempt, 2 for its first retry, … */
  attempt: number;
  outcome: AttemptOutcome;
  /** Set when the attempt failed. */
  error?: ProviderError;
  /** With `retry`: the wait before the next attempt, in ms. */
  delayMs?: number;
}

export interface PolicyOptions {
  /** Deadline of one attempt, in ms. */
  timeoutMs: number;
  /** Retries of one candidate after 429 / 408 / 409 / 5xx / network errors. */
  maxRetries: number;
  /** Time one candidate may take with its retries and their waits, in ms. */
  budgetMs: number;
  /** The caller's signal: when it aborts, the attempt is abandoned and its reason thrown, nothing else tried. */
  signal?: AbortSignal;
  onAttempt?: (event: AttemptEvent) => void;
  /** Secrets (API keys) to remove from provider messages kept on errors. */
  secrets?: readonly string[];
}

/** First backoff delay; doubled per retry, up to BACKOFF_MAX_MS, then jittered down by up to half. */
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 8_000;

/** The reason an attempt's own timer aborts it with, told apart from the caller's abort. */
class AttemptTimeout extends Error {
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = 'AttemptTimeout';
  }
}

/**
 * Calls `attempt` for the candidates in order until one succeeds:
 * - each attempt gets a signal that aborts after `timeoutMs` or when the caller's signal does;
 * - 429, 408, 409, 5xx and network errors are retried on the same candidate with exponential backoff and
 *   jitter, or after the provider's `Retry-After` (`retry-after-ms`), as long as the candidate stays within
 *   `budgetMs`; then the next candidate is tried;
 * - a timeout goes to the next candidate at once: a provider that hung for the whole deadline is likely to
 *   hang again, and a retry would double the wait;
 * - 401 / 402 / 403 (key revoked, billing, no access) and 404 (model unknown there) go to the next candidate:
 *   the problem is this provider's account or catalogue, and another provider may well answer. So do
 *   unreadable answers;
 * - any other 4xx fails at once: the request itself is refused (too long, bad parameter), and sending the
 *   same prompt elsewhere would mostly fail the same way while spending on every provider.
 * The AI SDK's own retries must be off (`maxRetries: 0`) so that this is the only policy.
 *
 * Throws the caller's abort reason when it aborts, else the last ProviderError, whose `attempts` lists the
 * candidates that failed before.
 */
export async function withPolicy<C extends PolicyCandidate, T>(
  candidates: readonly C[],
  attempt: (candidate: C, signal: AbortSignal) => Promise<T>,
  options: PolicyOptions,
): Promise<T> {
  if (candidates.length === 0) throw new Error('withPolicy needs at least one candidate');
  const failures: ProviderFailure[] = [];
  let last: ProviderError | undefined;
  for (const [index, candidate] of candidates.entries()) {
    const outcome = await tryCandidate(candidate, attempt, options, index === candidates.length - 1);
    if (outcome.ok) return outcome.value;
    last = outcome.error;
    if (outcome.final) break;
    failures.push(outcome.error.toFailure());
  }
  const error = last!;
  throw new ProviderError({
    provider: error.provider,
    model: error.model,
    kind: error.kind,
    retryable: error.retryable,
    ...(error.status === undefined ? {} : { status: error.status }),
    ...(error.detail === undefined ? {} : { detail: error.detail }),
    attempts: failures,
  });
}

type CandidateOutcome<T> =
  | { ok: true; value: T }
  /** `final`: stop here, do not try the next candidates. */
  | { ok: false; error: ProviderError; final: boolean };

/** One candidate with its retries. */
async function tryCandidate<C extends PolicyCandidate, T>(
  candidate: C,
  attempt: (candidate: C, signal: AbortSignal) => Promise<T>,
  options: PolicyOptions,
  isLast: boolean,
): Promise<CandidateOutcome<T>> {
  const started = performance.now();
  for (let number = 1; ; number++) {
    const report = (event: Omit<AttemptEvent, 'provider' | 'model' | 'attempt'>) =>
      options.onAttempt?.({
        provider: candidate.provider,
        model: candidate.model,
        attempt: number,
        ...event,
      });
    const result = await runAttempt(candidate, attempt, options);
    if (result.ok) {
      report({ outcome: 'ok' });
      return result;
    }
    const { error, retryAfterMs } = result;
    const action = actionOf(error.kind);
    if (action === 'retry' && number <= options.maxRetries) {
      const delayMs = retryAfterMs ?? backoffMs(number);
      if (performance.now() - started + delayMs <= options.budgetMs) {
        report({ outcome: 'retry', error, delayMs });
        await sleep(delayMs, undefined, options.signal ? { signal: options.signal } : undefined).catch(() => {
          throw options.signal?.reason;
        });
        continue;
      }
    }
    const final = action === 'fail' || isLast;
    report({ outcome: final ? 'fail' : 'fallback', error });
    return { ok: false, error, final };
  }
}

type AttemptResult<T> =
  | { ok: true; value: T }
  | { ok: false; error: ProviderError; retryAfterMs: number | undefined };

/** One attempt under its own deadline. Rethrows the caller's abort. */
async function runAttempt<C extends PolicyCandidate, T>(
  candidate: C,
  attempt: (candidate: C, signal: AbortSignal) => Promise<T>,
  options: PolicyOptions,
): Promise<AttemptResult<T>> {
  options.signal?.throwIfAborted();
  const timer = new AbortController();
  const timeout = setTimeout(() => timer.abort(new AttemptTimeout(options.timeoutMs)), options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timer.signal]) : timer.signal;
  try {
    return { ok: true, value: await attempt(candidate, signal) };
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    const timedOut = timer.signal.aborted;
    return {
      ok: false,
      error: toProviderError(error, candidate, {
        timedOut,
        timeoutMs: options.timeoutMs,
        secrets: options.secrets,
      }),
      retryAfterMs: timedOut ? undefined : retryAfterOf(error),
    };
  } finally {
    clearTimeout(timeout);
  }
}

/** What the policy does after a failure of this kind (retry falls back once retries or budget run out). */
function actionOf(kind: ProviderErrorKind): 'retry' | 'fallback' | 'fail' {
  switch (kind) {
    case 'rate_limited':
    case 'unavailable':
    case 'network':
      return 'retry';
    case 'timeout':
    case 'auth':
    case 'not_found':
    case 'invalid_response':
      return 'fallback';
    case 'rejected':
    case 'stream_broken':
      return 'fail';
  }
}

/** Exponential backoff with jitter: base·2^(n-1), capped, then between half and all of it. */
function backoffMs(retry: number): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (retry - 1));
  return Math.round(ceiling * (0.5 + Math.random() / 2));
}

/** The SDK error behind a RetryError (there is none with `maxRetries: 0`, but be safe). */
function unwrap(error: unknown): unknown {
  return RetryError.isInstance(error) ? error.lastError : error;
}

/** The wait a provider asked for, from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or a date). */
export function retryAfterOf(error: unknown): number | undefined {
  const cause = unwrap(error);
  if (!APICallError.isInstance(cause) || !cause.responseHeaders) return undefined;
  const headers = Object.fromEntries(
    Object.entries(cause.responseHeaders).map(([name, value]) => [name.toLowerCase(), value]),
  );
  const ms = Number(headers['retry-after-ms']);
  if (headers['retry-after-ms'] !== undefined && Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers['retry-after'];
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (value.trim() !== '' && Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** The kind of an HTTP status. */
function kindOfStatus(status: number): ProviderErrorKind {
  if (status === 429) return 'rate_limited';
  if (status === 408 || status === 409 || status >= 500) return 'unavailable';
  if (status === 401 || status === 402 || status === 403) return 'auth';
  if (status === 404) return 'not_found';
  return 'rejected';
}

/** Whether a retry of this kind of failure can succeed. */
function retryableKind(kind: ProviderErrorKind): boolean {
  return kind === 'rate_limited' || kind === 'unavailable' || kind === 'network' || kind === 'timeout';
}

/**
 * Any error of an attempt as a ProviderError, keeping only safe fields: the status, and the provider's message
 * cleaned of secrets and shortened. The SDK error is not kept (its request body holds the prompt).
 */
export function toProviderError(
  error: unknown,
  candidate: PolicyCandidate,
  context: { timedOut?: boolean; timeoutMs?: number; secrets?: readonly string[] | undefined } = {},
): ProviderError {
  if (error instanceof ProviderError) return error;
  const base = { provider: candidate.provider, model: candidate.model };
  if (context.timedOut) {
    return new ProviderError({
      ...base,
      kind: 'timeout',
      retryable: true,
      detail: `no answer within ${context.timeoutMs} ms`,
    });
  }
  const cause = unwrap(error);
  const message = cause instanceof Error ? cause.message : undefined;
  const detail = safeDetail(message, context.secrets ?? []);
  if (APICallError.isInstance(cause)) {
    const status = cause.statusCode;
    const kind = status === undefined ? 'network' : kindOfStatus(status);
    return new ProviderError({
      ...base,
      kind,
      retryable: retryableKind(kind),
      ...(status === undefined ? {} : { status }),
      ...(detail ? { detail } : {}),
    });
  }
  return new ProviderError({
    ...base,
    kind: 'invalid_response',
    retryable: false,
    ...(detail ? { detail } : {}),
  });
}
