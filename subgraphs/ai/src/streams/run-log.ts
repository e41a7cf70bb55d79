// A reply streams from the instance generating it to a client connected to any instance (the gateway picks one
// per request, and a reconnect may land elsewhere): its events go through a shared, ordered, expiring log. The
// client resumes after the last event id it saw (SSE `Last-Event-ID`), so a dropped connection loses nothing.

/** What a run's events say: a piece of text, the end (with the stored message), or a failure. */
export type RunEventType = 'delta' | 'done' | 'error';

export interface RunEvent {
  /** 1, 2, 3 … in the order appended: the SSE event id. */
  seq: number;
  type: RunEventType;
  /** JSON-serialisable payload. */
  data: unknown;
}

/** The run log port: SQLite (one machine's instances) by default, Redis streams with REDIS_URL. */
export interface RunLog {
  readonly kind: 'sqlite' | 'redis';
  /** Opens a run for its owner; it and its events are dropped `ttlMs` after it was opened. */
  create(runId: string, ownerId: string, ttlMs: number): Promise<void>;
  /** The run's owner, or null when there is no such run (or it expired). */
  ownerOf(runId: string): Promise<string | null>;
  /** Appends the event with the next sequence number (one writer per run: the instance generating it). */
  append(runId: string, event: RunEvent): Promise<void>;
  /** The events after `afterSeq`, oldest first, at most `limit`. */
  readAfter(runId: string, afterSeq: number, limit: number): Promise<RunEvent[]>;
  /**
   * Resolves when events after `afterSeq` may be there, after `timeoutMs` at the latest, or when `signal`
   * aborts. Spurious wake-ups are fine: the caller reads again.
   */
  waitAfter(runId: string, afterSeq: number, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** True for the events that end a run. */
export const isFinal = (event: RunEvent) => event.type === 'done' || event.type === 'error';

/**
 * The events of a run after `afterSeq`: what is there, then the rest as it comes, until the final event or the
 * signal. A run that is gone (expired, unknown) ends the iteration.
 */
export async function* followRun(
  log: RunLog,
  runId: string,
  afterSeq: number,
  signal: AbortSignal,
  waitMs = 15_000,
): AsyncGenerator<RunEvent> {
  let last = afterSeq;
  while (!signal.aborted) {
    const events = await log.readAfter(runId, last, 256);
    for (const event of events) {
      last = event.seq;
      yield event;
      if (isFinal(event)) return;
    }
    if (events.length === 256) continue;
    if ((await log.ownerOf(runId)) === null) return;
    await log.waitAfter(runId, last, waitMs, signal);
  }
}

/**
 * The writer side of one run: numbers the events. Appending after the final event is refused, so a run ends
 * once.
 */
export class RunWriter {
  private seq = 0;
  private ended = false;

  constructor(
    private readonly log: RunLog,
    readonly runId: string,
  ) {}

  async delta(text: string): Promise<void> {
    await this.write('delta', { text });
  }

  async done(data: unknown): Promise<void> {
    await this.write('done', data);
    this.ended = true;
  }

  async fail(message: string, code: string): Promise<void> {
    await this.write('error', { message, code });
    this.ended = true;
  }

  private async write(type: RunEventType, data: unknown): Promise<void> {
    if (this.ended) throw new Error(`run ${this.runId} has ended`);
    this.seq += 1;
    await this.log.append(this.runId, { seq: this.seq, type, data });
  }
}
