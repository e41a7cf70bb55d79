import { rateLimited } from '@aiva/shared';
import type { AiStore, Capability, UsageRecord } from './store/ai.store.js';

/** Per person and UTC day: requests per capability and tokens of all capabilities together. */
export interface DailyQuotas {
  /** Requests per capability and day (AI_DAILY_REQUESTS). */
  requests: number;
  /** Tokens (in and out, every capability) per day (AI_DAILY_TOKENS). */
  tokens: number;
}

/** `YYYY-MM-DD` of a time, in UTC. */
export const dayOf = (at: Date) => at.toISOString().slice(0, 10);

/** Seconds until the next UTC midnight, when the quotas start again. */
export function secondsUntilTomorrow(at: Date): number {
  const next = Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate() + 1);
  return Math.max(1, Math.ceil((next - at.getTime()) / 1000));
}

/**
 * Counts what people use of each capability, per UTC day, and refuses a call once their quota of the day is
 * spent: RATE_LIMITED with `retryAfter` (seconds until midnight UTC). A check comes before a call, the record
 * after it (with the tokens the provider reported), so one call may end a little over the quota.
 */
export class UsageMeter {
  constructor(
    private readonly store: AiStore,
    private readonly quotas: DailyQuotas,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Throws RATE_LIMITED when the person may not call `capability` today. */
  async check(ownerId: string, capability: Capability): Promise<void> {
    const at = this.now();
    const today = await this.store.usageOf(ownerId, dayOf(at));
    const tokens = today.reduce((sum, u) => sum + u.inputTokens + u.outputTokens, 0);
    const requests = today.find((u) => u.capability === capability)?.requests ?? 0;
    const retryAfter = secondsUntilTomorrow(at);
    if (tokens >= this.quotas.tokens) {
      throw rateLimited(
        `Your daily AI quota of ${this.quotas.tokens} tokens is spent; it renews at midnight UTC`,
        {
          retryAfter,
          limit: this.quotas.tokens,
        },
      );
    }
    if (requests >= this.quotas.requests) {
      throw rateLimited(
        `Your daily quota of ${this.quotas.requests} ${capability} requests is spent; it renews at midnight UTC`,
        { retryAfter, limit: this.quotas.requests },
      );
    }
  }

  /** Adds one request and its tokens to the person's usage of today. */
  record(
    ownerId: string,
    capability: Capability,
    inputTokens: number,
    outputTokens: number,
  ): Promise<UsageRecord> {
    return this.store.addUsage(ownerId, dayOf(this.now()), capability, {
      requests: 1,
      inputTokens,
      outputTokens,
    });
  }

  /** The person's usage today. */
  today(ownerId: string): Promise<UsageRecord[]> {
    return this.store.usageOf(ownerId, dayOf(this.now()));
  }
}
