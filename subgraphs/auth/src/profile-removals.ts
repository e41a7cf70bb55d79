import { isAivaError, type Logger } from '@aiva/shared';
import type { ProfileClient } from './profile.client.js';
import type { AccountStore } from './store/account.store.js';

export interface ProfileRemovalsOptions {
  /** First retry after this many seconds; then the delay doubles, up to `maxDelaySeconds`. */
  retrySeconds: number;
  /** Default one hour. */
  maxDelaySeconds?: number;
  /** Entries tried per round (default 50). */
  batchSize?: number;
  logger: Logger;
  now?: () => Date;
}

/** An attempt in progress holds its entry this long (longer than the profile client's 10-second deadline). */
const LEASE_MS = 60_000;

/**
 * The durable undo of a half-done sign-up. When users created the profile but the account could not be stored,
 * the profile must go; users may be unreachable right then. The removal is recorded in auth's own store first
 * (`pending_profile_removals`), tried at once, and retried in the background with backoff until users confirms
 * it (or answers that the profile is already gone), surviving restarts. Removal is idempotent, so several auth
 * instances working the same store at worst try one profile twice.
 *
 * If even the record cannot be written (auth's store is down too), the entry is kept in memory and recorded on
 * a later round; only a crash in that state loses it, and that is logged as an error.
 */
export class ProfileRemovals {
  private readonly unrecorded = new Map<string, Date>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private readonly maxDelayMs: number;

  constructor(
    private readonly store: AccountStore,
    private readonly profiles: ProfileClient,
    private readonly options: ProfileRemovalsOptions,
  ) {
    this.maxDelayMs = (options.maxDelaySeconds ?? 3600) * 1000;
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  /** Delay before attempt `attempts + 1`, after `attempts` failures. */
  private delayMs(attempts: number): number {
    const base = this.options.retrySeconds * 1000;
    return Math.min(this.maxDelayMs, base * 2 ** Math.max(0, Math.min(attempts - 1, 30)));
  }

  /** Records the removal and tries it at once. Never throws: what fails here is retried later. */
  async enqueue(userId: string): Promise<void> {
    const at = this.now();
    try {
      // Due after the lease: the attempt right below is the first one.
      await this.store.addProfileRemoval(userId, at, new Date(at.getTime() + LEASE_MS));
    } catch (error) {
      this.unrecorded.set(userId, at);
      this.options.logger.error(
        { err: (error as Error).message, userId },
        'could not record the removal of a half-created profile; it is kept in memory and retried',
      );
    }
    await this.attempt(userId, 0);
  }

  /** Tries every removal due now (and those not yet recorded); returns how many are done. */
  runDue(): Promise<number> {
    this.running ??= this.runOnce().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Retries in the background every `retrySeconds` (the timer does not keep the process alive). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.runDue().catch((error: unknown) =>
        this.options.logger.error({ err: (error as Error).message }, 'profile removal retry failed'),
      );
    }, this.options.retrySeconds * 1000);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => 0);
  }

  private async runOnce(): Promise<number> {
    let done = 0;
    for (const [userId, at] of [...this.unrecorded]) {
      try {
        await this.store.addProfileRemoval(userId, at);
        this.unrecorded.delete(userId);
      } catch {
        if (await this.attempt(userId, 0)) done++;
      }
    }
    const now = this.now();
    const due = await this.store.claimProfileRemovals(
      now,
      new Date(now.getTime() + LEASE_MS),
      this.options.batchSize ?? 50,
    );
    for (const entry of due) if (await this.attempt(entry.userId, entry.attempts)) done++;
    return done;
  }

  /** One attempt; true when the profile is gone (removed now, or already). */
  private async attempt(userId: string, attempts: number): Promise<boolean> {
    let failure: string | null = null;
    try {
      await this.profiles.remove(userId);
    } catch (error) {
      // Already gone (removed by an earlier attempt whose answer was lost, or by an admin): done.
      if (!(isAivaError(error) && error.code === 'NOT_FOUND')) {
        failure = isAivaError(error) ? error.message : 'the users service is unavailable';
      }
    }
    if (failure === null) {
      this.unrecorded.delete(userId);
      await this.store.completeProfileRemoval(userId).catch((error: unknown) => {
        // The entry stays and the next round removes the (already gone) profile again: harmless.
        this.options.logger.warn({ err: (error as Error).message, userId }, 'profile removal not cleared');
      });
      if (attempts > 0) this.options.logger.info({ userId, attempts }, 'half-created profile removed');
      return true;
    }
    const next = new Date(this.now().getTime() + this.delayMs(attempts + 1));
    this.options.logger.warn(
      { userId, attempts: attempts + 1, nextAttemptAt: next.toISOString(), err: failure },
      'could not remove a half-created profile yet; will retry',
    );
    if (!this.unrecorded.has(userId)) {
      await this.store.failProfileRemoval(userId, next, failure).catch(() => {});
    }
    return false;
  }
}
