import { sleepUnlessAborted } from '@aiva/shared';
/** Resolves when the slot is ready to serve; rejects when `signal` aborts first. */
export type WaitReady = (slot: string, signal: AbortSignal) => Promise<void>;

/** How often the default readiness check polls `/health`, and how long one request may take. */
export const HEALTH_POLL_INTERVAL_MS = 100;
export const HEALTH_REQUEST_TIMEOUT_MS = 1_000;

/** The host to probe a process listening on `host`: a wildcard address is probed on the loopback. */
export function probeHost(host: string | undefined): string {
  if (!host || host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * Polls `url` until it answers 2xx. Rejects with the abort reason when `signal` aborts. The poll timer does not
 * hold the process open.
 */
export async function waitForHealthy(
  url: string,
  signal: AbortSignal,
  intervalMs = HEALTH_POLL_INTERVAL_MS,
): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    try {
      const response = await fetch(url, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(HEALTH_REQUEST_TIMEOUT_MS)]),
      });
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // Not listening yet, or aborted: the loop checks the signal.
    }
    await sleepUnlessAborted(intervalMs, signal);
  }
}
