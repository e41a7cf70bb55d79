import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { RoutingTable } from '../src/discovery/protocol.js';
import { routedCall, ServiceUnavailableError } from '../src/discovery/routed-call.js';
import { ServiceRouter } from '../src/discovery/service-router.js';

// The signal each attempt runs with: aborted by the attempt's own timeout (a timeout, against the instance) or by
// the caller's signal (its reason, not against the instance), and released when the attempt ends. No I/O here:
// the attempts wait on their signal.

function routerOf(instances: number): ServiceRouter {
  const table: RoutingTable = {
    etag: 'x',
    generatedAt: new Date().toISOString(),
    supergraph: null,
    routes: [],
    services: {
      users: {
        instances: Array.from({ length: instances }, (_, i) => ({
          id: `i${i}`,
          url: `http://127.0.0.1:${10_000 + i}`,
          graphqlUrl: `http://127.0.0.1:${10_000 + i}/graphql`,
        })),
      },
    },
  };
  return new ServiceRouter({ routing: { current: () => table, onChange: () => () => {} } });
}

/** An attempt that never answers: it fails with its signal's reason once that aborts. */
const hang = (_endpoint: unknown, signal: AbortSignal) =>
  new Promise<never>((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });

const answer = async () => ({ value: 'ok', outcome: 'success' as const });

describe('routedCall signals', () => {
  it('times an attempt out on its own timeout: a timeout of the service, sent once', async () => {
    let attempts = 0;
    const error = await routedCall(routerOf(2), 'users', { retryable: true, timeoutMs: 50 }, (e, signal) => {
      attempts++;
      return hang(e, signal);
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect((error as ServiceUnavailableError).reason).toBe('timeout');
    expect(((error as Error).cause as Error).name).toBe('TimeoutError');
    expect(attempts).toBe(1);
  });

  it("stops an attempt when the caller's signal aborts, with the caller's reason", async () => {
    const caller = new AbortController();
    const reason = new Error('budget spent');
    setTimeout(() => caller.abort(reason), 20);
    const router = routerOf(1);
    await expect(
      routedCall(router, 'users', { retryable: true, timeoutMs: 60_000, signal: caller.signal }, hang),
    ).rejects.toBe(reason);
    // Not counted against the instance.
    const traffic = router.takeTraffic().find((t) => t.instanceId === 'i0');
    expect(traffic?.timeouts ?? 0).toBe(0);
    expect(traffic?.connectionFailures ?? 0).toBe(0);
  });

  it("starts an attempt aborted when the caller's signal already is", async () => {
    const caller = new AbortController();
    const reason = new Error('cancelled');
    caller.abort(reason);
    await expect(
      routedCall(routerOf(1), 'users', { retryable: true, timeoutMs: 60_000, signal: caller.signal }, hang),
    ).rejects.toBe(reason);
  });

  it("runs an attempt on the caller's signal alone when the caller's deadline comes first", async () => {
    const caller = new AbortController();
    let seen: AbortSignal | undefined;
    await routedCall(
      routerOf(1),
      'users',
      { retryable: true, timeoutMs: 10_000, signal: caller.signal, deadline: Date.now() + 1_000 },
      async (_endpoint, signal) => {
        seen = signal;
        return answer();
      },
    );
    expect(seen).toBe(caller.signal);
  });

  it("keeps the attempt's own timeout when the caller's deadline is later", async () => {
    const caller = new AbortController();
    const error = await routedCall(
      routerOf(1),
      'users',
      { retryable: true, timeoutMs: 50, signal: caller.signal, deadline: Date.now() + 60_000 },
      hang,
    ).catch((e: unknown) => e);
    expect((error as ServiceUnavailableError).reason).toBe('timeout');
    expect(caller.signal.aborted).toBe(false);
  });

  it("follows one caller's signal from many attempts at once, without a listener-leak warning", async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const caller = new AbortController();
      const reason = new Error('budget spent');
      const calls = Array.from({ length: 20 }, () =>
        routedCall(
          routerOf(1),
          'users',
          { retryable: false, timeoutMs: 60_000, signal: caller.signal },
          hang,
        ),
      );
      caller.abort(reason);
      for (const call of calls) await expect(call).rejects.toBe(reason);
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
      expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it("releases the caller's signal and the timer when an attempt ends", async () => {
    const caller = new AbortController();
    const signals: AbortSignal[] = [];
    for (let i = 0; i < 20; i++) {
      await routedCall(
        routerOf(1),
        'users',
        { retryable: true, timeoutMs: 30, signal: caller.signal },
        async (_endpoint, signal) => {
          signals.push(signal);
          return answer();
        },
      );
    }
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    // Past the attempts' timeout: the timers were stopped, no finished attempt is aborted afterwards.
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(signals.every((signal) => !signal.aborted)).toBe(true);
    // Nor does the caller's abort reach them.
    caller.abort(new Error('late'));
    expect(signals.every((signal) => !signal.aborted)).toBe(true);
  });
});
