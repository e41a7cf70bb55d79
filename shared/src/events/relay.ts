import type { Logger } from '../log.js';
import type { EventBus } from './bus.js';
import { errorMessage } from './delivery.js';
import type { OutboxStore } from './outbox.js';

export interface OutboxRelayOptions {
  store: OutboxStore;
  bus: EventBus;
  logger?: Logger;
  /** Poll interval: picks up events written by other processes and retries after failures (default 1000). */
  intervalMs?: number;
  /** Events read from the outbox per round trip (default 100). */
  batchSize?: number;
}

/**
 * Moves events from a store's outbox to the bus, oldest first. An event is marked published only after the
 * bus accepted it; when publishing fails, the rest stays pending and the next tick retries from there, so
 * nothing is lost and the order holds. A crash between publish and mark republishes the event with the same
 * id, which the bus deduplicates.
 */
export class OutboxRelay {
  private readonly store: OutboxStore;
  private readonly bus: EventBus;
  private readonly logger: Logger | undefined;
  private readonly intervalMs: number;
  private readonly batchSize: number;

  private running = false;
  private timer: NodeJS.Timeout | null = null;
  /** The flush in progress, and the one queued behind it (flushes never overlap). */
  private current: Promise<number> | null = null;
  private queued: Promise<number> | null = null;
  private failing = false;

  constructor(options: OutboxRelayOptions) {
    this.store = options.store;
    this.bus = options.bus;
    this.logger = options.logger;
    this.intervalMs = options.intervalMs ?? 1_000;
    this.batchSize = options.batchSize ?? 100;
    if (this.intervalMs <= 0) throw new RangeError('intervalMs must be > 0');
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1)
      throw new RangeError('batchSize must be an integer >= 1');
  }

  /** Starts polling, with a first flush right away. Calling it again is harmless. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Asks for a flush soon (after a write). Only while started; calls in a burst share one flush. */
  notify(): void {
    if (this.running) this.schedule(0);
  }

  /**
   * Publishes everything pending now and returns how many events were published. Rejects with the bus error
   * when a publish fails (the events from there on stay pending). Concurrent calls are serialised.
   */
  flush(): Promise<number> {
    if (!this.current) return this.run();
    // A flush is running and may have read the outbox before the caller's write: run once more after it.
    this.queued ??= this.current
      .catch(() => 0)
      .then(() => {
        this.queued = null;
        return this.run();
      });
    return this.queued;
  }

  /** Stops polling after a final flush attempt; a failure there is logged, the events stay pending. */
  async stop(): Promise<void> {
    if (!this.running) {
      await this.current?.catch(() => 0);
      return;
    }
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    try {
      await this.flush();
    } catch {
      // already logged by run()
    }
  }

  private run(): Promise<number> {
    const run = this.publishPending().finally(() => {
      this.current = null;
    });
    this.current = run;
    return run;
  }

  private schedule(delayMs: number): void {
    if (this.timer) {
      if (delayMs > 0) return; // a tick is already planned
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => void this.tick(), delayMs);
    // Polling alone must not keep the process alive.
    this.timer.unref?.();
  }

  private async tick(): Promise<void> {
    this.timer = null;
    try {
      await this.flush();
    } catch {
      // logged in publishPending; the next tick retries
    }
    if (this.running && !this.timer) this.schedule(this.intervalMs);
  }

  private async publishPending(): Promise<number> {
    let published = 0;
    const seen = new Set<string>();
    for (;;) {
      const events = await this.store.pendingEvents(this.batchSize);
      // Guard against a store that keeps returning events it was told are published.
      const fresh = events.filter((e) => !seen.has(e.id));
      if (fresh.length === 0) break;
      const accepted: string[] = [];
      try {
        for (const event of fresh) {
          await this.bus.publish(event);
          accepted.push(event.id);
          seen.add(event.id);
        }
      } catch (error) {
        const failed = fresh[accepted.length];
        // Ids and types only: event data stays out of the log.
        this.logger?.warn(
          { eventId: failed?.id, type: failed?.type, err: errorMessage(error) },
          'outbox publish failed; will retry',
        );
        this.failing = true;
        await this.markPublished(accepted);
        throw error;
      }
      await this.markPublished(accepted);
      published += accepted.length;
      if (events.length < this.batchSize) break;
    }
    if (this.failing) {
      this.failing = false;
      this.logger?.info({ published }, 'outbox publishing recovered');
    }
    return published;
  }

  private async markPublished(ids: string[]): Promise<void> {
    if (ids.length > 0) await this.store.markPublished(ids);
  }
}
