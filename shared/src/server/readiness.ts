/**
 * A named dependency check for `/ready`: resolves when the dependency answers, throws when it does not.
 * - a hard check (the default) must pass for the service to be ready (its store, auth's session store);
 * - a `soft` check never makes it unready: a soft dependency that is down (the event bus, whose outbox buffers;
 *   a cache) is reported under `degraded`;
 * - a check that passes may still name parts of its dependency that are down (the gateway's check of a
 *   subgraph passes while one instance answers, and names the instances that do not): they are reported under
 *   `degraded` as `<check>/<part>`.
 */
export interface ReadinessCheck {
  name: string;
  // biome-ignore lint/suspicious/noConfusingVoidType: most checks resolve with nothing (`store.ping()`).
  check: () => Promise<void | ReadinessDetail>;
  soft?: boolean;
}

/** What a passing check may add: the parts of its dependency that are down (e.g. instance ids). */
export interface ReadinessDetail {
  down?: readonly string[];
}

export interface ReadinessReport {
  ready: boolean;
  /** Every check's state, hard and soft. */
  checks: Record<string, 'up' | 'down'>;
  /** The checks that are down without making the service unready; absent when there are none. */
  degraded?: Record<string, 'down'>;
}

/** How long a hard check may take (a probe of the orchestrator waits 1 s: a hard check that hangs is down). */
export const DEFAULT_READINESS_TIMEOUT_MS = 2_000;
/**
 * How long a soft check may take: short, so that `/ready` answers within a probe's timeout while a
 * soft dependency hangs (the service is ready, and says what is degraded).
 */
export const DEFAULT_SOFT_READINESS_TIMEOUT_MS = 500;

/**
 * Runs every check in parallel, each bounded by its timeout (`timeoutMs` for hard checks, `softTimeoutMs` for
 * soft ones). Error details go to `onFailure`, not the report; `onResult` hears every outcome.
 */
export async function runReadinessChecks(
  checks: readonly ReadinessCheck[],
  options: {
    timeoutMs?: number;
    softTimeoutMs?: number;
    onFailure?: (name: string, error: unknown) => void;
    onResult?: (check: ReadinessCheck, error: unknown | undefined) => void;
  } = {},
): Promise<ReadinessReport> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS;
  const softTimeoutMs = Math.min(options.softTimeoutMs ?? DEFAULT_SOFT_READINESS_TIMEOUT_MS, timeoutMs);
  const results = await Promise.all(
    checks.map(async (entry) => {
      const limit = entry.soft ? softTimeoutMs : timeoutMs;
      let timer: NodeJS.Timeout | undefined;
      try {
        const detail = await Promise.race([
          entry.check(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out after ${limit} ms`)), limit);
          }),
        ]);
        options.onResult?.(entry, undefined);
        return [entry, 'up', detail?.down ?? []] as const;
      } catch (error) {
        options.onFailure?.(entry.name, error);
        options.onResult?.(entry, error ?? new Error('failed'));
        return [entry, 'down', []] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  let ready = true;
  const degraded: Record<string, 'down'> = {};
  for (const [entry, state, partsDown] of results) {
    for (const part of partsDown) degraded[`${entry.name}/${part}`] = 'down';
    if (state === 'up') continue;
    if (entry.soft) degraded[entry.name] = 'down';
    else ready = false;
  }
  return {
    ready,
    checks: Object.fromEntries(results.map(([entry, state]) => [entry.name, state])),
    ...(Object.keys(degraded).length > 0 ? { degraded } : {}),
  };
}
