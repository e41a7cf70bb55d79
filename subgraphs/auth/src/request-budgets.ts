import type { Cache } from '@aiva/shared';
import { addressKey, type BudgetRule, emailKey, RateBudget } from './rate-budget.js';

/** The abuse-prone requests that send mail or create things, each with its own counters. */
export type BudgetedRequest = 'sign_up' | 'password_reset' | 'email_verification' | 'email_change';

export interface RequestBudgetLimits {
  /** Per email address (known or not), and per signed-in account where there is one. */
  perEmail: number;
  /** Per client address. */
  perAddress: number;
  windowSeconds: number;
}

const MESSAGE = 'Too many requests. Try again later.';

/**
 * Budgets of `signUp`, `requestPasswordReset`, `requestEmailVerification` and `requestEmailChange`, per email and
 * per client address, whoever calls auth (the gateway or anyone reaching it directly). A request is counted before
 * anything else happens, the same whether or not the email has an account, so the budget reveals nothing: past
 * it, RATE_LIMITED with `retryAfter`. A request refused for its address does not use up the email's budget (and
 * the other way round), so nobody can exhaust a victim's budget from an address that is itself over its bound.
 */
export class RequestBudgets {
  private readonly budget: RateBudget;

  constructor(
    cache: Cache,
    private readonly limits: RequestBudgetLimits,
    now?: () => number,
  ) {
    this.budget = new RateBudget(cache, limits.windowSeconds, now);
  }

  /**
   * Takes one request of the budget: per client address first, then per email (when known; a malformed email
   * counts for the address only), then per account (`userId`, when signed in).
   */
  async take(
    request: BudgetedRequest,
    who: { email?: string | null; ip: string | null; userId?: string },
  ): Promise<void> {
    const rules: BudgetRule[] = [];
    if (who.ip) rules.push({ key: `${request}:ip:${addressKey(who.ip)}`, max: this.limits.perAddress });
    if (who.email) rules.push({ key: `${request}:email:${emailKey(who.email)}`, max: this.limits.perEmail });
    if (who.userId) rules.push({ key: `${request}:user:${who.userId}`, max: this.limits.perEmail });
    if (rules.length === 0) return;
    await this.budget.reserve(rules, MESSAGE);
  }
}
