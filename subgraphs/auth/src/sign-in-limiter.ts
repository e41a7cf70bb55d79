import type { Cache } from '@aiva/shared';
import { addressKey, emailKey, RateBudget, type Reservation } from './rate-budget.js';

export interface SignInLimits {
  maxFailuresPerAccount: number;
  maxFailuresPerIp: number;
  windowSeconds: number;
}

const MESSAGE = 'Too many failed sign-in attempts. Try again later.';

/**
 * Bounds failed sign-ins per account (by email, known or not, so the limit reveals nothing) and per client IP.
 *
 * Every attempt is *reserved* before any password is checked: the counters are incremented first (atomically, in
 * the cache port), and the attempt goes on only when both are within their bounds; otherwise RATE_LIMITED with
 * `retryAfter` seconds until the window ends. So parallel wrong guesses cannot all pass a check made before any of
 * them was counted: of N at once, at most the bound reach the password check.
 *
 * A successful sign-in gives its own attempt back (on both counters); a failed one keeps it. Earlier failures
 * stay counted until their window ends (a success does not wipe them: an attacker racing a real sign-in gains
 * nothing). Each attempt counts, also several in one request (aliases).
 */
export class SignInLimiter {
  private readonly budget: RateBudget;

  constructor(
    cache: Cache,
    private readonly limits: SignInLimits,
    now?: () => number,
  ) {
    this.budget = new RateBudget(cache, limits.windowSeconds, now);
  }

  /** Reserves one attempt for the account and the IP; throws RATE_LIMITED when either has none left. */
  reserve(email: string, ip: string | null): Promise<Reservation> {
    const rules = [{ key: `signin:account:${emailKey(email)}`, max: this.limits.maxFailuresPerAccount }];
    if (ip) rules.push({ key: `signin:ip:${addressKey(ip)}`, max: this.limits.maxFailuresPerIp });
    return this.budget.reserve(rules, MESSAGE);
  }
}
