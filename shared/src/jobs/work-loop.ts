import { errorMessage } from '../events/delivery.js';
import type { Logger } from '../log.js';

export interface WorkLoopOptions<T> {
  /** What the loop works on, in its log lines ("delivery log", "media processing"). */
  label: string;
  /**
   * Claims up to `limit` items that are due, atomically (a lease in the store), so several instances share the
   * work and a dead instance's items are taken over when their lease ends.
   */
  claim(limit: number): Promise<T[]>;
  /** Works one claimed item and records its outcome itself. A throw is logged; the item's lease then decides. */
  work(item: T): Promise<void>;
  /** Items worked at once. */
  concurrency: number;
  /** How often the store is looked at when nothing wakes the loop, in ms (default 1000). */
  pollMs?: number;
  /** Runs before each claim (housekeeping: purges, expiries); its failure is logged like a claim's. */
  beforeClaim?(): Promise<void>;
  logger?: Logger;
}

/**
 * A worker pool over a store of leased items: keeps up to `concurrency` items in work, claiming more as slots
 * free up, and otherwise looks again every `pollMs` or when `notify()` says something was queued. A store that
 * cannot be reached is retried at the poll interval. `stop()` claims nothing more and waits for the items in work.
 */
export class WorkLoop<T> {
  private running = false;
  private active = 0;
  private readonly working = new Set<Promise<void>>();
  private wake: (() => void) | undefined;
  private woken = false;
  private loop: Promise<void> | undefined;
  private readonly pollMs: number;

  constructor(private readonly options: WorkLoopOptions<T>) {
    this.pollMs = options.pollMs ?? 1000;
  }

  /** Items in work now. */
  get inFlight(): number {
    return this.active;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Something was queued (or a slot freed): look now rather than at the next poll. */
  notify(): void {
    this.woken = true;
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.notify();
    await this.loop;
    await Promise.allSettled([...this.working]);
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.woken = false;
      const free = this.options.concurrency - this.active;
      let claimed = 0;
      if (free > 0) {
        try {
          await this.options.beforeClaim?.();
          const items = await this.options.claim(free);
          claimed = items.length;
          for (const item of items) this.begin(item);
        } catch (error) {
          this.options.logger?.warn(
            { err: errorMessage(error) },
            `${this.options.label} unavailable; will retry`,
          );
        }
        // Every free slot filled: there may be more due at once.
        if (claimed > 0 && claimed >= free) continue;
      }
      if (this.woken || !this.running) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.pollMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private begin(item: T): void {
    this.active += 1;
    const done = this.options
      .work(item)
      .catch((error) => {
        this.options.logger?.error({ err: errorMessage(error) }, `${this.options.label}: work failed`);
      })
      .finally(() => {
        this.active -= 1;
        this.working.delete(done);
        if (this.running) this.notify();
      });
    this.working.add(done);
  }
}
