import { errorMessage, type Logger, WorkLoop } from '@aiva/shared';
import { Counter, type Registry } from 'prom-client';
import type { DeliveryRecord, DeliveryStatus, NotificationStore } from '../store/notification.store.js';

/** How a failed send is treated: retried later (transient), or given up (permanent; `gone`: forget the target). */
export interface FailureKind {
  transient: boolean;
  /** The target no longer exists (a push subscription the push service says is gone). */
  gone?: boolean;
}

export interface DeliveryDispatcherOptions {
  store: NotificationStore;
  /** Sends one delivery on its channel; throws on failure. */
  send(delivery: DeliveryRecord): Promise<void>;
  /** Sorts a send's failure into transient or permanent. */
  classify(error: unknown): FailureKind;
  /** A push subscription the push service says is gone. */
  onGone?(delivery: DeliveryRecord): Promise<void>;
  /** Attempts before a transiently failing delivery is marked failed (DELIVERY_MAX_ATTEMPTS). */
  maxAttempts: number;
  /** First retry delay, doubling per attempt up to an hour (DELIVERY_RETRY_BASE_MS). */
  retryBaseMs: number;
  /** Deliveries sent at once (DELIVERY_CONCURRENCY). */
  concurrency: number;
  /** How long a claimed delivery is held by this worker: longer than a send can take. */
  leaseMs: number;
  /** How often the log is looked at when nothing wakes the dispatcher, in ms (default 1000). */
  pollMs?: number;
  /** How long sent and failed deliveries stay in the log (DELIVERY_RETENTION_DAYS), in ms; purged hourly. */
  retentionMs?: number;
  logger?: Logger;
}

const MAX_RETRY_DELAY_MS = 60 * 60 * 1000;
const MAX_ERROR_LENGTH = 500;
const PURGE_EVERY_MS = 60 * 60 * 1000;

/** The delay before attempt `attempts + 1`: base × 2^(attempts − 1), capped at an hour, ±20 % jitter. */
export function retryDelayMs(baseMs: number, attempts: number): number {
  const exact = Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(exact * (0.8 + Math.random() * 0.4));
}

/**
 * Works through the delivery log: takes due deliveries (held by a lease, so several instances share the work
 * and a crashed one's deliveries are taken over when the lease ends), sends them a few at a time, and records
 * each outcome: `sent`; `retrying` with backoff after a transient failure (SMTP 4xx, network, HTTP 429/5xx);
 * `failed` after a permanent one or `maxAttempts` attempts. The log survives restarts: nothing queued is lost.
 */
export class DeliveryDispatcher {
  private lastPurge = 0;
  private readonly loop: WorkLoop<DeliveryRecord>;
  private readonly outcomes = new Counter({
    name: 'aiva_notification_deliveries_total',
    help: 'Delivery attempts by channel and outcome (sent, retrying, failed)',
    labelNames: ['channel', 'outcome'],
    registers: [],
  });

  constructor(private readonly options: DeliveryDispatcherOptions) {
    this.loop = new WorkLoop({
      label: 'delivery log',
      claim: (limit) => this.claim(limit),
      work: (delivery) => this.attempt(delivery),
      beforeClaim: () => this.purge(),
      concurrency: options.concurrency,
      ...(options.pollMs !== undefined ? { pollMs: options.pollMs } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
  }

  /** Puts the dispatcher's metrics on a registry. */
  register(registry: Registry): void {
    registry.registerMetric(this.outcomes);
  }

  start(): void {
    this.loop.start();
  }

  /** Something was queued: look now rather than at the next poll. */
  notify(): void {
    this.loop.notify();
  }

  /** Claims nothing more and waits for the sends in progress. */
  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /** Removes what is past the retention, at most once an hour; several instances may do it, harmlessly. */
  private async purge(): Promise<void> {
    const { retentionMs } = this.options;
    if (retentionMs === undefined || Date.now() - this.lastPurge < PURGE_EVERY_MS) return;
    this.lastPurge = Date.now();
    const purged = await this.options.store.purgeDeliveries(new Date(Date.now() - retentionMs));
    if (purged > 0) this.options.logger?.info({ purged }, 'delivery log purged');
  }

  private claim(limit: number): Promise<DeliveryRecord[]> {
    const now = new Date();
    return this.options.store.claimDueDeliveries(now, new Date(now.getTime() + this.options.leaseMs), limit);
  }

  /** One pass by hand (tests): claims up to `concurrency` due deliveries and sends them. Returns how many. */
  async tick(): Promise<number> {
    const due = await this.claim(this.options.concurrency);
    await Promise.all(due.map((delivery) => this.attempt(delivery)));
    return due.length;
  }

  private async attempt(delivery: DeliveryRecord): Promise<void> {
    const attempts = delivery.attempts + 1;
    const { logger } = this.options;
    const at = () => new Date();
    let outcome: { status: DeliveryStatus; lastError: string | null; nextAttemptAt: Date };
    try {
      await this.options.send(delivery);
      outcome = { status: 'sent', lastError: null, nextAttemptAt: at() };
    } catch (error) {
      const kind = this.options.classify(error);
      const message = errorMessage(error).slice(0, MAX_ERROR_LENGTH);
      const retry = kind.transient && attempts < this.options.maxAttempts;
      outcome = retry
        ? {
            status: 'retrying',
            lastError: message,
            nextAttemptAt: new Date(Date.now() + retryDelayMs(this.options.retryBaseMs, attempts)),
          }
        : { status: 'failed', lastError: message, nextAttemptAt: at() };
      // Ids, channel and error only: never the address, the content or a token.
      logger?.[retry ? 'warn' : 'error'](
        { deliveryId: delivery.id, channel: delivery.channel, attempts, err: message },
        retry ? 'delivery failed; will retry' : 'delivery failed',
      );
      if (kind.gone) await this.options.onGone?.(delivery).catch(() => {});
    }
    this.outcomes.inc({ channel: delivery.channel, outcome: outcome.status });
    await this.options.store.finishDelivery(delivery.id, { ...outcome, attempts }, at());
  }
}
