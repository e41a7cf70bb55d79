/** When and how soon the supervisor restarts a process that exited on its own, and how long a stop may take. */
export interface RestartPolicy {
  /** Delay before the first restart; it doubles with each further consecutive failure. */
  initialBackoffMs: number;
  /** The longest delay between restarts. */
  maxBackoffMs: number;
  /** Consecutive failures after which the process is left down and reported as a crash loop. */
  crashLoopLimit: number;
  /** A process that ran this long before exiting was healthy: its failure count starts again. */
  stableAfterMs: number;
  /** How long a stopping process may take after SIGTERM before it gets SIGKILL. */
  stopTimeoutMs: number;
}

/** The defaults, in one table. */
export const DEFAULT_RESTART_POLICY: Readonly<RestartPolicy> = Object.freeze({
  initialBackoffMs: 500,
  maxBackoffMs: 30_000,
  crashLoopLimit: 5,
  stableAfterMs: 10_000,
  stopTimeoutMs: 5_000,
});

/** What to do about a process that exited while it should have been running. */
export type RestartDecision =
  | { restart: true; failures: number; delayMs: number }
  | { restart: false; failures: number };

/**
 * Counts the exit as a failure (starting from zero again when the process had run `stableAfterMs`) and decides:
 * restart after the backoff for that many failures, or give up once `crashLoopLimit` is reached.
 */
export function decideRestart(
  previousFailures: number,
  ranForMs: number,
  policy: RestartPolicy,
): RestartDecision {
  const failures = (ranForMs >= policy.stableAfterMs ? 0 : previousFailures) + 1;
  if (failures >= policy.crashLoopLimit) return { restart: false, failures };
  return { restart: true, failures, delayMs: backoffDelay(failures, policy) };
}

/** The delay before restarting after `failures` consecutive failures: 500, 1000, 2000 ms… up to the maximum. */
export function backoffDelay(failures: number, policy: RestartPolicy): number {
  const exponent = Math.max(0, failures - 1);
  return Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** Math.min(exponent, 30));
}

/** The defaults with the given overrides; throws naming a value that makes no sense. */
export function restartPolicy(overrides: Partial<RestartPolicy> = {}): RestartPolicy {
  const policy = { ...DEFAULT_RESTART_POLICY, ...overrides };
  for (const [key, value] of Object.entries(policy)) {
    if (!Number.isFinite(value) || value < 0)
      throw new RangeError(`restart policy ${key}: must be a number >= 0`);
  }
  if (policy.crashLoopLimit < 1) throw new RangeError('restart policy crashLoopLimit: must be at least 1');
  return policy;
}
