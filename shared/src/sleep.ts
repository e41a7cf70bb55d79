/**
 * Waits `ms`, or less when `signal` aborts (shutdown must not sit out a long wait). The abort listener is
 * removed when the wait ends, so loops that sleep on one long-lived signal do not pile listeners up. The timer
 * does not keep the process alive.
 */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
  });
}
