import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../log.js';
import type { EventBus } from './bus.js';
import { isBusUnavailable, isEventValidationError } from './bus-errors.js';
import { errorMessage, validateEvent } from './delivery.js';
import type { AivaEvent } from './event.js';
import type { OutboxStore, QuarantinedEvent } from './outbox.js';

/** Failed publishes of one row (while the bus is up) before it is quarantined, by default (`OUTBOX_MAX_ATTEMPTS`). */
export const DEFAULT_OUTBOX_MAX_ATTEMPTS = 10;
/** How long the relay lease lasts without renewal, by default: a dead relay is replaced within this time. */
export const DEFAULT_RELAY_LEASE_MS = 30_000;

/** What a relay reports as it works (metrics). */
export interface OutboxRelayObserver {
  /** `count` events were published and marked. */
  published?(count: number): void;
  /** A row was quarantined after `attempts` failed attempts. */
  quarantined?(event: Pick<AivaEvent, 'id' | 'type'>, attempts: number): void;
  /** This relay took (`true`) or lost / gave up (`false`) the outbox's relay lease. */
  leadership?(held: boolean): void;
}

export interface OutboxRelayOptions {
  store: OutboxStore;
  bus: EventBus;
  logger?: Logger;
  /** Poll interval: picks up events written by other processes and retries after failures (default 1000). */
  intervalMs?: number;
  /** Events read from the outbox per round trip (default 100). */
  batchSize?: number;
  /**
   * Failed publishes of one row, while the bus is reachable, before the row is quarantined (default 10). A row
   * that fails validation is quarantined at once; failures of an unreachable bus count nothing.
   */
  maxAttempts?: number;
  /**
   * How long the outbox's relay lease lasts without renewal, in ms (default 30,000). The holder renews it every
   * third of that while it works; a relay that dies is replaced by another instance's within this time.
   */
  leaseMs?: number;
  /** This relay's lease owner id (default `<host>:<pid>:<random>`). */
  owner?: string;
  observer?: OutboxRelayObserver;
}

/**
 * Moves events from a store's outbox to the bus, oldest first. An event is marked published only after the
 * bus accepted it; a crash between publish and mark republishes the event with the same id: the bus
 * deduplicates it within its window (JetStream: 2 minutes), and consumers are idempotent by event id
 * (`runOnce` of the store kits) for the rest.
 *
 * Failures: when the bus cannot be reached (`BusUnavailableError`, or a failed publish followed by a failed
 * ping) the relay stops at that event and retries on the next tick: order holds, nothing is counted against
 * the event. When the bus is up and the event itself fails, the attempt is counted in the outbox; after
 * `maxAttempts` (at once for an event that fails validation) the row is quarantined — kept with its error,
 * skipped, reported (error log line and `observer.quarantined`) — and later events flow. `replayQuarantined`
 * puts such rows back in line.
 *
 * Several instances of a service share one outbox: only the holder of the outbox's relay lease publishes (the
 * others stand by and poll for the lease), so no two relays publish the same rows at once and the order holds.
 */
export class OutboxRelay {
  private readonly store: OutboxStore;
  private readonly bus: EventBus;
  private readonly logger: Logger | undefined;
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private readonly maxAttempts: number;
  private readonly leaseMs: number;
  private readonly observer: OutboxRelayObserver | undefined;
  /** This relay's id in the outbox's lease. */
  readonly owner: string;

  private running = false;
  private timer: NodeJS.Timeout | null = null;
  /** The flush in progress, and the one queued behind it (flushes never overlap). */
  private current: Promise<number> | null = null;
  private queued: Promise<number> | null = null;
  /** Why publishing is held up, for one log line per state change. */
  private blocked: 'bus' | 'event' | 'store' | null = null;
  /** Publish errors already reported by `failed` (anything else that fails a flush is the store's). */
  private readonly reported = new WeakSet<object>();
  private leader = false;
  /** Whether "standing by" was logged since this relay last held the lease. */
  private standbyLogged = false;
  /** When the lease was last taken or renewed (local clock, taken before asking). */
  private renewedAt = 0;

  constructor(options: OutboxRelayOptions) {
    this.store = options.store;
    this.bus = options.bus;
    this.logger = options.logger;
    this.intervalMs = options.intervalMs ?? 1_000;
    this.batchSize = options.batchSize ?? 100;
    this.maxAttempts = options.maxAttempts ?? DEFAULT_OUTBOX_MAX_ATTEMPTS;
    this.leaseMs = options.leaseMs ?? DEFAULT_RELAY_LEASE_MS;
    this.observer = options.observer;
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    if (this.intervalMs <= 0) throw new RangeError('intervalMs must be > 0');
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1)
      throw new RangeError('batchSize must be an integer >= 1');
    if (!Number.isInteger(this.maxAttempts) || this.maxAttempts < 1)
      throw new RangeError('maxAttempts must be an integer >= 1');
    if (!(this.leaseMs > 0)) throw new RangeError('leaseMs must be > 0');
  }

  /** Whether this relay holds the outbox's relay lease (it is the one publishing). */
  get isLeader(): boolean {
    return this.leader;
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
   * Publishes everything pending now and returns how many events were published (0 while another instance
   * holds the relay lease). Rejects with the bus error when a publish fails and the event stays in line (the
   * events from there on stay pending). Concurrent calls are serialised.
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

  /**
   * Stops polling after a final flush attempt (a failure there is logged, the events stay pending), then gives
   * the relay lease up so another instance takes over at once.
   */
  async stop(): Promise<void> {
    if (this.running) {
      this.running = false;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      try {
        await this.flush();
      } catch {
        // already logged by run()
      }
    } else {
      await this.current?.catch(() => 0);
    }
    await this.release();
  }

  /** Quarantined rows of the outbox, oldest first (operators: what is held back, and why). */
  quarantined(limit?: number): Promise<QuarantinedEvent[]> {
    return this.store.quarantinedEvents(limit);
  }

  /**
   * Puts quarantined rows (these ids, or all) back in line with a fresh attempt budget and asks for a flush.
   * A row that still cannot be published goes back to quarantine (at once when it fails validation).
   * Returns how many rows went back.
   */
  async replayQuarantined(ids?: readonly string[]): Promise<number> {
    const replayed = await this.store.replayQuarantined(ids);
    if (replayed > 0) {
      this.logger?.info({ replayed }, 'quarantined outbox events put back in line');
      this.notify();
    }
    return replayed;
  }

  /** Deletes quarantined rows for good: their events are never published. Returns how many. */
  async discardQuarantined(ids: readonly string[]): Promise<number> {
    const discarded = await this.store.discardQuarantined(ids);
    if (discarded > 0) this.logger?.warn({ discarded, ids }, 'quarantined outbox events discarded');
    return discarded;
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
    } catch (error) {
      // Publish failures are logged in publishPending; a store that fails (lease, read, mark) once per outage.
      // The next tick retries either way.
      const reported = typeof error === 'object' && error !== null && this.reported.has(error);
      if (!reported && this.blocked !== 'store') {
        this.blocked = 'store';
        this.logger?.warn({ err: errorMessage(error) }, 'outbox relay cannot use its store; retrying');
      }
    }
    if (this.running && !this.timer) this.schedule(this.intervalMs);
  }

  /** Takes the relay lease, or renews it once a third of it has passed. False while another relay holds it. */
  private async holdLease(): Promise<boolean> {
    const startedAt = Date.now();
    if (this.leader && startedAt - this.renewedAt < this.leaseMs / 3) return true;
    const held = await this.store.acquireRelayLease(this.owner, this.leaseMs);
    if (held) {
      this.renewedAt = startedAt;
      if (!this.leader) {
        this.leader = true;
        this.standbyLogged = false;
        this.logger?.info(
          { owner: this.owner },
          'outbox relay lease taken: this instance publishes the outbox',
        );
        this.observer?.leadership?.(true);
      }
      return true;
    }
    if (this.leader) {
      this.leader = false;
      this.logger?.warn({ owner: this.owner }, 'outbox relay lease lost to another instance; standing by');
      this.observer?.leadership?.(false);
      this.standbyLogged = true;
    } else if (!this.standbyLogged) {
      this.standbyLogged = true;
      this.logger?.info({ owner: this.owner }, 'another instance publishes the outbox; standing by');
    }
    return false;
  }

  private async release(): Promise<void> {
    if (!this.leader) return;
    this.leader = false;
    this.observer?.leadership?.(false);
    try {
      await this.store.releaseRelayLease(this.owner);
    } catch (error) {
      this.logger?.warn({ err: errorMessage(error) }, 'could not release the outbox relay lease; it expires');
    }
  }

  private async publishPending(): Promise<number> {
    if (!(await this.holdLease())) return 0;
    let published = 0;
    const seen = new Set<string>();
    const mark = async (ids: string[]) => {
      if (ids.length === 0) return;
      await this.store.markPublished(ids);
      published += ids.length;
      this.observer?.published?.(ids.length);
    };
    for (;;) {
      const events = await this.store.pendingEvents(this.batchSize);
      // Guard against a store that keeps returning events it was told are published.
      const fresh = events.filter((e) => !seen.has(e.id));
      if (fresh.length === 0) break;
      const accepted: string[] = [];
      for (const event of fresh) {
        seen.add(event.id);
        // A long batch renews the lease as it goes; a relay that lost it stops at once.
        if (!(await this.holdLease())) {
          await mark(accepted);
          return published;
        }
        try {
          validateEvent(event);
          await this.bus.publish(event);
          accepted.push(event.id);
        } catch (error) {
          await mark(accepted.splice(0));
          if (await this.failed(event, error)) continue; // quarantined: the next event's turn
          if (typeof error === 'object' && error !== null) this.reported.add(error);
          throw error;
        }
      }
      await mark(accepted);
      if (events.length < this.batchSize) break;
    }
    if (this.blocked) {
      this.logger?.info(
        { published },
        this.blocked === 'bus'
          ? 'event bus reachable again: outbox publishing resumed'
          : this.blocked === 'store'
            ? 'outbox relay can use its store again'
            : 'outbox publishing recovered',
      );
      this.blocked = null;
    }
    return published;
  }

  /**
   * Handles a failed publish of `event`. True when the row was quarantined (the relay moves on); false when it
   * stays first in line (the relay stops and retries later).
   */
  private async failed(event: AivaEvent, error: unknown): Promise<boolean> {
    const err = errorMessage(error);
    // Ids and types only: event data stays out of the log.
    const ids = { eventId: event.id, type: event.type };
    const permanent = isEventValidationError(error);
    if (!permanent && (isBusUnavailable(error) || !(await this.busReachable()))) {
      if (this.blocked !== 'bus') {
        this.blocked = 'bus';
        this.logger?.warn(
          { ...ids, err },
          'event bus unavailable: outbox publishing paused, events wait in the outbox',
        );
      }
      return false;
    }
    const outcome = await this.store.recordFailure(event.id, {
      error: err,
      permanent,
      maxAttempts: this.maxAttempts,
    });
    if (outcome.quarantined) {
      this.logger?.error(
        { ...ids, attempts: outcome.attempts, err },
        'outbox event quarantined: skipped until replayed (replayQuarantined)',
      );
      this.observer?.quarantined?.(event, outcome.attempts);
      return true;
    }
    this.blocked = 'event';
    this.logger?.warn(
      { ...ids, attempts: outcome.attempts, maxAttempts: this.maxAttempts, err },
      'outbox publish failed; will retry',
    );
    return false;
  }

  private async busReachable(): Promise<boolean> {
    try {
      await this.bus.ping();
      return true;
    } catch {
      return false;
    }
  }
}
