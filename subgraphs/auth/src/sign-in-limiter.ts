import { type Cache, rateLimited } from '@aiva/shared';
import { hashSecret } from './secret-token.js';

export interface SignInLimits {
  maxFailuresPerAccount: number;
  maxFailuresPerIp: number;
  windowSeconds: number;
}

/**
 * Bounds failed sign-ins per account (by email, known or not, so the limit reveals nothing) and per client IP.
 * Failures are counted in the cache port (Redis when shared); once a bound is reached, every attempt for that
 * account or IP is refused with RATE_LIMITED and `retryAfter` seconds until the window ends, before any
 * password is checked. Each attempt counts, also several in one request (aliases).
 */
export class SignInLimiter {
  constructor(
    private readonly cache: Cache,
    private readonly limits: SignInLimits,
  ) {}

  private keys(email: string, ip: string | null) {
    const keys = [
      { key: `signin:fail:account:${hashSecret(email)}`, max: this.limits.maxFailuresPerAccount },
    ];
    if (ip) keys.push({ key: `signin:fail:ip:${ip}`, max: this.limits.maxFailuresPerIp });
    return keys;
  }

  /** Throws RATE_LIMITED when the account or the IP is locked out. */
  async assertAllowed(email: string, ip: string | null): Promise<void> {
    let retryAfterMs = 0;
    for (const { key } of this.keys(email, ip)) {
      const lockedUntil = Number(await this.cache.get(`${key}:locked`));
      if (lockedUntil > Date.now()) retryAfterMs = Math.max(retryAfterMs, lockedUntil - Date.now());
    }
    if (retryAfterMs > 0) {
      throw rateLimited('Too many failed sign-in attempts. Try again later.', {
        retryAfter: Math.ceil(retryAfterMs / 1000),
      });
    }
  }

  /** Counts a failure; reaching a bound locks the account or IP for the rest of the window. */
  async recordFailure(email: string, ip: string | null): Promise<void> {
    for (const { key, max } of this.keys(email, ip)) {
      const { value, ttlMs } = await this.cache.increment(key, this.limits.windowSeconds);
      if (value >= max) {
        const lockMs = Math.max(ttlMs, 1000);
        await this.cache.set(`${key}:locked`, String(Date.now() + lockMs), Math.ceil(lockMs / 1000));
      }
    }
  }

  /** A successful sign-in clears the account's failures (not the IP's). */
  async recordSuccess(email: string): Promise<void> {
    await this.cache.delete(`signin:fail:account:${hashSecret(email)}`);
  }
}
