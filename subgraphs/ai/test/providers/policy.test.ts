import { APICallError } from 'ai';
import { describe, expect, it } from 'vitest';
import { ProviderError, safeDetail } from '../../src/providers/errors.js';
import { type AttemptEvent, retryAfterOf, toProviderError, withPolicy } from '../../src/providers/policy.js';

const A = { provider: 'a', model: 'm1' };
const B = { provider: 'b', model: 'm2' };

/** An HTTP failure as the AI SDK reports it (request body included, as the SDK does). */
function httpError(
  status: number,
  headers: Record<string, string> = {},
  message = `HTTP ${status}`,
): APICallError {
  return new APICallError({
    message,
    url: 'http://provider.invalid/v1/x',
    requestBodyValues: { prompt: 'the user prompt' },
    statusCode: status,
    responseHeaders: headers,
    isRetryable: status === 429 || status >= 500,
  });
}

/** A connection failure as the AI SDK reports it: no status. */
function networkError(): APICallError {
  return new APICallError({
    message: 'Cannot connect to API: connect ECONNREFUSED',
    url: 'http://provider.invalid/v1/x',
    requestBodyValues: {},
    isRetryable: true,
  });
}

/** Runs withPolicy where each candidate answers from a script of errors / values, in order. */
async function run(
  script: Record<string, Array<Error | string>>,
  options: Partial<Parameters<typeof withPolicy>[2]> = {},
  candidates = [A, B],
) {
  const events: AttemptEvent[] = [];
  const calls: string[] = [];
  const outcome = await withPolicy(
    candidates,
    async (candidate) => {
      calls.push(candidate.provider);
      const next = script[candidate.provider]?.shift();
      if (next instanceof Error) throw next;
      return next ?? `${candidate.provider} answered`;
    },
    { timeoutMs: 1_000, maxRetries: 2, budgetMs: 5_000, onAttempt: (e) => events.push(e), ...options },
  ).then(
    (value) => ({ value, error: undefined }),
    (error: unknown) => ({ value: undefined, error }),
  );
  return { ...outcome, events, calls };
}

describe('withPolicy', () => {
  it('returns the first success without retries', async () => {
    const { value, calls, events } = await run({});
    expect(value).toBe('a answered');
    expect(calls).toEqual(['a']);
    expect(events).toEqual([{ provider: 'a', model: 'm1', attempt: 1, outcome: 'ok' }]);
  });

  it('retries a 429 after the retry-after-ms the provider asked for', async () => {
    const { value, events } = await run({ a: [httpError(429, { 'retry-after-ms': '5' })] });
    expect(value).toBe('a answered');
    expect(events.map((e) => [e.outcome, e.delayMs])).toEqual([
      ['retry', 5],
      ['ok', undefined],
    ]);
  });

  it('backs off exponentially with jitter when no Retry-After is given', async () => {
    const { events } = await run({ a: [httpError(500), httpError(502)] }, { maxRetries: 2 });
    const [first, second] = events.map((e) => e.delayMs);
    expect(first).toBeGreaterThanOrEqual(250);
    expect(first).toBeLessThanOrEqual(500);
    expect(second).toBeGreaterThanOrEqual(500);
    expect(second).toBeLessThanOrEqual(1000);
    expect(events.at(-1)).toMatchObject({ outcome: 'ok', attempt: 3 });
  });

  it('retries network errors', async () => {
    const { value, events } = await run({ a: [networkError()] }, { maxRetries: 1 });
    expect(value).toBe('a answered');
    expect(events[0]).toMatchObject({ outcome: 'retry', error: { kind: 'network', retryable: true } });
  });

  it('falls back without waiting when Retry-After passes the budget', async () => {
    const { value, events } = await run(
      { a: [httpError(429, { 'retry-after': '3600' })] },
      { budgetMs: 1_000 },
    );
    expect(value).toBe('b answered');
    expect(events.map((e) => `${e.provider}:${e.outcome}`)).toEqual(['a:fallback', 'b:ok']);
  });

  it('falls back on 401, 403 and 404, fails at once on 400 and 422', async () => {
    for (const status of [401, 403, 404]) {
      const { value } = await run({ a: [httpError(status)] });
      expect(value).toBe('b answered');
    }
    for (const status of [400, 422]) {
      const { error, calls } = await run({ a: [httpError(status)] });
      expect(error).toMatchObject({ provider: 'a', kind: 'rejected', status, retryable: false });
      expect(calls).toEqual(['a']);
    }
  });

  it('falls back on an unreadable answer', async () => {
    const { value, events } = await run({ a: [new TypeError('Invalid JSON response')] });
    expect(value).toBe('b answered');
    expect(events[0]?.error).toMatchObject({ kind: 'invalid_response', detail: 'Invalid JSON response' });
  });

  it("times an attempt out through the signal it gets, and the timeout is this policy's, not the caller's", async () => {
    const seen: unknown[] = [];
    const result = await withPolicy(
      [A, B],
      (candidate, signal) =>
        candidate === A
          ? new Promise<string>((_, reject) => {
              signal.addEventListener('abort', () => {
                seen.push(signal.reason);
                reject(signal.reason);
              });
            })
          : Promise.resolve('b answered'),
      { timeoutMs: 50, maxRetries: 2, budgetMs: 5_000 },
    );
    expect(result).toBe('b answered');
    expect(seen).toHaveLength(1);
  });

  it("rethrows the caller's abort reason during a backoff wait and tries nothing more", async () => {
    const caller = new AbortController();
    const reason = new Error('caller gone');
    const calls: string[] = [];
    const pending = withPolicy(
      [A, B],
      async (candidate) => {
        calls.push(candidate.provider);
        throw httpError(503, { 'retry-after': '30' });
      },
      {
        timeoutMs: 1_000,
        maxRetries: 2,
        budgetMs: 60_000,
        signal: caller.signal,
        onAttempt: (event) => {
          if (event.outcome === 'retry') caller.abort(reason);
        },
      },
    );
    await expect(pending).rejects.toBe(reason);
    expect(calls).toEqual(['a']);
  });

  it('ends with the last error, listing the candidates that failed before it', async () => {
    const { error } = await run({ a: [httpError(401)], b: [httpError(404)] });
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({
      provider: 'b',
      model: 'm2',
      kind: 'not_found',
      status: 404,
      attempts: [{ provider: 'a', model: 'm1', kind: 'auth', status: 401 }],
    });
    expect((error as Error).message).toBe('b:m2 failed, not_found (HTTP 404): HTTP 404 [after a:m1 auth]');
  });

  it('refuses an empty candidate list', async () => {
    await expect(withPolicy([], async () => 1, { timeoutMs: 1, maxRetries: 0, budgetMs: 1 })).rejects.toThrow(
      /at least one candidate/,
    );
  });
});

describe('retryAfterOf', () => {
  it('reads retry-after-ms, Retry-After seconds and dates', () => {
    expect(retryAfterOf(httpError(429, { 'retry-after-ms': '1500' }))).toBe(1500);
    expect(retryAfterOf(httpError(429, { 'retry-after': '2' }))).toBe(2000);
    expect(retryAfterOf(httpError(429, { 'retry-after': new Date(0).toUTCString() }))).toBe(0);
    expect(retryAfterOf(httpError(429, { 'retry-after': 'soon' }))).toBeUndefined();
    expect(retryAfterOf(httpError(429))).toBeUndefined();
    expect(retryAfterOf(new Error('x'))).toBeUndefined();
  });
});

describe('provider errors', () => {
  it('keep neither the key nor the request body of the SDK error', () => {
    const key = 'sk-live-abcdefghijklmnop';
    const error = toProviderError(httpError(401, {}, `Incorrect API key provided: ${key}`), A, {
      secrets: [key],
    });
    const serialized = JSON.stringify({ ...error, message: error.message });
    expect(serialized).not.toContain(key);
    expect(serialized).not.toContain('the user prompt');
    expect(error.cause).toBeUndefined();
  });

  it('clean token-shaped strings and shorten long messages', () => {
    expect(safeDetail('bad header Bearer abc.def.ghi here', [])).toBe('bad header *** here');
    expect(safeDetail('key hf_abcdefghijkl is invalid', [])).toBe('key *** is invalid');
    expect(safeDetail('x'.repeat(500), [])).toHaveLength(161);
    expect(safeDetail(undefined, [])).toBeUndefined();
  });
});
