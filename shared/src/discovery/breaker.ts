import type { BreakerState } from './protocol.js';

/** When a breaker opens and how it recovers. Defaults in `DEFAULT_BREAKER_OPTIONS`. */
export interface BreakerOptions {
  /** Consecutive failures that open the breaker. */
  consecutiveFailures: number;
  /** Share of failed requests in the window that opens the breaker (0–1)… */
  errorRate: number;
  /** …once the window holds at least this many requests. */
  minRequests: number;
  /** Length of the error-rate window, in ms. */
  windowMs: number;
  /** How long an open breaker refuses requests before letting one trial through (half-open), in ms. */
  cooldownMs: number;
  /** Longest cool-down after repeated failed trials (the cool-down doubles per failed trial), in ms. */
  maxCooldownMs: number;
}

export const DEFAULT_BREAKER_OPTIONS: BreakerOptions = {
  consecutiveFailures: 5,
  errorRate: 0.5,
  minRequests: 20,
  windowMs: 10_000,
  cooldownMs: 5_000,
  maxCooldownMs: 60_000,
};

/**
 * A circuit breaker for one instance. Closed: requests pass, failures are counted (consecutively and as a rate
 * over a window). Open: requests are refused until the cool-down ends. Half-open: one trial request at a time
 * passes; its success closes the breaker, its failure opens it again with a doubled cool-down.
 */
export class Breaker {
  private stateNow: BreakerState = 'closed';
  private consecutive = 0;
  private windowStart: number;
  private windowRequests = 0;
  private windowFailures = 0;
  private openedAt = 0;
  private cooldown: number;
  private trialInFlight = false;

  constructor(
    private readonly options: BreakerOptions = DEFAULT_BREAKER_OPTIONS,
    private readonly now: () => number = Date.now,
  ) {
    this.windowStart = now();
    this.cooldown = options.cooldownMs;
  }

  /** The state, moving from open to half-open once the cool-down is over. */
  get state(): BreakerState {
    if (this.stateNow === 'open' && this.now() - this.openedAt >= this.cooldown) {
      this.stateNow = 'half-open';
      this.trialInFlight = false;
    }
    return this.stateNow;
  }

  /** Whether a request may be sent now (does not reserve the half-open trial: see `begin`). */
  canPass(): boolean {
    const state = this.state;
    return state === 'closed' || (state === 'half-open' && !this.trialInFlight);
  }

  /** Marks the start of a request that `canPass` allowed (reserves the half-open trial). */
  begin(): void {
    if (this.state === 'half-open') this.trialInFlight = true;
  }

  onSuccess(): void {
    this.count(false);
    this.consecutive = 0;
    if (this.stateNow === 'half-open') {
      this.stateNow = 'closed';
      this.cooldown = this.options.cooldownMs;
      this.trialInFlight = false;
    }
  }

  onFailure(): void {
    this.count(true);
    this.consecutive++;
    if (this.stateNow === 'half-open') {
      this.cooldown = Math.min(this.cooldown * 2, this.options.maxCooldownMs);
      this.open();
      return;
    }
    if (this.stateNow !== 'closed') return;
    const { consecutiveFailures, errorRate, minRequests } = this.options;
    const rateTripped =
      this.windowRequests >= minRequests && this.windowFailures / this.windowRequests >= errorRate;
    if (this.consecutive >= consecutiveFailures || rateTripped) this.open();
  }

  private open(): void {
    this.stateNow = 'open';
    this.openedAt = this.now();
    this.trialInFlight = false;
  }

  private count(failed: boolean): void {
    const now = this.now();
    if (now - this.windowStart >= this.options.windowMs) {
      this.windowStart = now;
      this.windowRequests = 0;
      this.windowFailures = 0;
    }
    this.windowRequests++;
    if (failed) this.windowFailures++;
  }
}
