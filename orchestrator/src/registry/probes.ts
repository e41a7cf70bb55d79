import type { Logger } from '@aiva/shared';
import type { RegistrySettings } from './defaults.js';
import type { ProbeResult } from './health-policy.js';
import type { Registry } from './registry.js';
import type { Lease } from './replica.js';

/** `GET <url>/ready` within `timeoutMs`: passes on 2xx; otherwise says why, for people. */
export async function probeReady(url: string, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const response = await fetch(`${url}/ready`, {
      headers: { accept: 'application/json' },
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    await response.body?.cancel().catch(() => undefined);
    return response.ok ? { ok: true } : { ok: false, reason: `ready answered ${response.status}` };
  } catch (error) {
    if (timeout.aborted) return { ok: false, reason: `no answer within ${timeoutMs} ms` };
    return { ok: false, reason: describeFetchFailure(error) };
  }
}

const FAILURE_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  UND_ERR_SOCKET: 'connection closed',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
};

/** Why a fetch failed, from undici's error cause. */
export function describeFetchFailure(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && FAILURE_REASONS[code]) return FAILURE_REASONS[code];
    current = (current as { cause?: unknown }).cause;
  }
  return error instanceof Error ? error.message : String(error);
}

export interface Prober {
  /** Probes one instance now (a new registration, or connection failures reported by a gateway). */
  probeNow(id: string): void;
  stop(): Promise<void>;
}

/**
 * Active health checks: every `probeIntervalMs` the replica holding the lease probes every instance's `/ready`
 * (one probe per instance at a time); any replica probes an instance at once when asked. Results go to the
 * registry, which applies the thresholds.
 */
export function startProber(options: {
  registry: Registry;
  settings: RegistrySettings;
  lease: Lease;
  logger: Logger;
}): Prober {
  const { registry, settings, lease, logger } = options;
  const controller = new AbortController();
  const inflight = new Map<string, Promise<void>>();

  function probe(id: string): void {
    if (controller.signal.aborted || inflight.has(id)) return;
    const record = registry.record(id);
    if (!record) return;
    const running = probeReady(record.url, settings.probeTimeoutMs, controller.signal)
      .then((result) => (controller.signal.aborted ? undefined : registry.applyProbe(id, record.url, result)))
      .catch((error: unknown) =>
        logger.warn({ instanceId: id, err: (error as Error).message }, 'probe not applied'),
      )
      .finally(() => inflight.delete(id));
    inflight.set(id, running);
  }

  const timer = setInterval(() => {
    if (!lease.held()) return;
    for (const record of registry.records()) probe(record.instanceId);
  }, settings.probeIntervalMs);
  timer.unref();
  const unsubscribe = registry.onAdded((id) => probe(id));

  return {
    probeNow: probe,
    async stop() {
      clearInterval(timer);
      unsubscribe();
      controller.abort();
      await Promise.allSettled([...inflight.values()]);
    },
  };
}
