import { type Cache, rateLimited } from '@aiva/shared';
import { hashSecret } from './secret-token.js';

/** One counter a reservation takes a unit of: at most `max` units per window. */
export interface BudgetRule {
  /** What is counted, e.g. `signin:account:<hash>` (the window is added to the key). */
  key: string;
  max: number;
}

/** A reservation that passed: every rule had a unit left, and one unit of each is now held. */
export interface Reservation {
  /** Gives the units back (an attempt that should not count, e.g. a successful sign-in). Harmless twice. */
  refund(): Promise<void>;
}

/**
 * Budgets in fixed windows over the cache port, so concurrent requests cannot all pass a check before any of
 * them is counted: a reservation *first* increments each rule's counter (atomically: Redis, the machine's SQLite
 * cache, or memory), and passes only when every counter is within its bound. Of N parallel reservations against
 * a bound of M, at most M pass.
 *
 * A window starts with the first reservation of a rule (its start is kept under `<key>:w`, set only when absent,
 * expiring with the window), and the start is part of the counters' keys: a counter and its refunds always belong
 * to the same window and expire with it. A refund increments a second counter (`<key>:r`) rather than
 * decrementing; a unit counts as held while `taken - refunded <= max`. Units refused for being over the bound are
 * never refunded (they never held a place) and keep counting, so a refund can only give back a place that was
 * really held, and a window whose bound was exceeded stays exhausted until it ends. Fixed windows let a burst
 * straddling two windows reach twice the bound.
 */
export class RateBudget {
  private readonly windowMs: number;

  constructor(
    private readonly cache: Cache,
    private readonly windowSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(Number.isInteger(windowSeconds) && windowSeconds > 0)) {
      throw new RangeError('windowSeconds must be a positive integer');
    }
    this.windowMs = windowSeconds * 1000;
  }

  /** The start (ms) of the rule's current window, starting one now when there is none. */
  private async windowStart(rule: string): Promise<number> {
    const anchor = `budget:${rule}:w`;
    const now = this.now();
    if (await this.cache.setIfAbsent(anchor, String(now), this.windowSeconds)) return now;
    const start = Number(await this.cache.get(anchor));
    // Expired in between (or unreadable): a window starting now.
    return Number.isFinite(start) && start > 0 && start <= now ? start : now;
  }

  /**
   * Takes one unit of every rule, in order; throws RATE_LIMITED (`retryAfter`: seconds until the window ends, and
   * `message`) as soon as one is over its bound, giving back the units already taken by this reservation.
   */
  async reserve(rules: readonly BudgetRule[], message: string): Promise<Reservation> {
    const held: string[] = [];
    const refund = async (keys: readonly string[]) => {
      await Promise.all(keys.map((key) => this.cache.increment(`${key}:r`, this.windowSeconds)));
    };
    for (const rule of rules) {
      const start = await this.windowStart(rule.key);
      const key = `budget:${rule.key}:${start}`;
      const { value } = await this.cache.increment(key, this.windowSeconds);
      const refunded = Number((await this.cache.get(`${key}:r`)) ?? 0) || 0;
      if (value - refunded > rule.max) {
        await refund(held);
        const retryAfter = Math.max(1, Math.ceil((start + this.windowMs - this.now()) / 1000));
        throw rateLimited(message, { retryAfter });
      }
      held.push(key);
    }
    let refunded = false;
    return {
      async refund() {
        if (refunded) return;
        refunded = true;
        await refund(held);
      },
    };
  }
}

/** A key part for an email that keeps the address itself out of the cache (Redis keys are easy to list). */
export const emailKey = (email: string): string => hashSecret(email.trim().toLowerCase()).slice(0, 32);

/** A key part for a client address. */
export const addressKey = (ip: string): string => ip.replace(/[^0-9A-Za-z:._-]/g, '_');
