import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerInfo,
  connect,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
  nanos,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from 'nats';
import type { Logger } from '../log.js';
import { sleepUnlessAborted } from '../sleep.js';
import { type AdministrableBus, REPLAY_FOR_HEADER, REPLAY_OF_HEADER } from './admin/admin.js';
import { createNatsBusAdmin, readDeadLetterMessages } from './admin/nats-admin.js';
import type { BusState, DeadLetter, EventBus, EventHandler, SubscribeOptions, Subscription } from './bus.js';
import { BusUnavailableError } from './bus-errors.js';
import type { EventType } from './catalog.js';
import {
  assertSubscribable,
  backoffFor,
  errorMessage,
  resolveSubscribeOptions,
  validateEvent,
} from './delivery.js';
import type { AivaEvent } from './event.js';
import {
  DEAD_LETTER_PREFIX,
  DEAD_LETTER_STREAM,
  DEFAULT_STREAM,
  deadLetterFilter,
  deadLetterSubject,
  durableName,
  EVENT_SUBJECTS,
  isNotFound,
  natsToken,
} from './nats-names.js';

export interface NatsBusOptions {
  /** One server URL or several separated by commas. May carry credentials; it is never logged. */
  url: string;
  /** The connecting service, used as the connection name (visible in NATS monitoring). */
  source?: string;
  logger?: Logger;
  /** The JetStream stream holding `aiva.>` (default `AIVA`). */
  stream?: string;
  /**
   * How long an idle pull waits for a message before asking again, in ms (>= 1000, default 5000). close()
   * waits up to this long for the last pulls to end, so no message is stranded in a closed connection.
   */
  pullExpiresMs?: number;
  /** Deadline of a publish: how long to wait for JetStream's acknowledgement, in ms (default 5000). */
  publishTimeoutMs?: number;
  /** Deadline of one connection attempt and of JetStream API calls (stream and consumer setup, ping), in ms (default 5000). */
  connectTimeoutMs?: number;
  /** Longest wait between connection attempts while no connection was ever made, in ms (default 5000). */
  maxReconnectDelayMs?: number;
  /**
   * JetStream's deduplication window of a stream this bus creates, in ms (default 2 minutes; an existing stream
   * keeps its own). Tests shorten it to republish an id as a new message.
   */
  duplicateWindowMs?: number;
}

/**
 * The connection's state: `connecting` until the first connection (with the streams in place), `up` while
 * connected, `down` while reconnecting, `closed` after close().
 */
export type NatsConnectionState = 'connecting' | 'up' | 'down' | 'closed';

/** The NATS bus has a few extra operations for operations and tests. */
export interface NatsBus extends EventBus, AdministrableBus {
  readonly kind: 'nats';
  /**
   * Deletes every durable of a consumer name (all event types) and its dead letters. The consumer's position
   * is lost: the next subscribe starts with new events only. Meant for retiring a consumer and for tests.
   */
  removeConsumer(consumer: string): Promise<void>;
  readonly state: NatsConnectionState;
  /** Resolves once the bus is up; rejects after `timeoutMs` when given (and when the bus is closed). */
  whenUp(timeoutMs?: number): Promise<void>;
  watchState(listener: (state: BusState) => void): () => void;
}

export { DEAD_LETTER_STREAM, DEFAULT_STREAM, durableName, EVENT_SUBJECTS, natsToken } from './nats-names.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Events are kept a week: a consumer stopped for longer misses events. */
const EVENT_MAX_AGE_MS = 7 * DAY_MS;
const DEAD_LETTER_MAX_AGE_MS = 30 * DAY_MS;
/** Publishing the same Nats-Msg-Id within this window is deduplicated by JetStream. */
const DUPLICATE_WINDOW_MS = 2 * 60 * 1000;
/** The server redelivers a message not acked within this time; a running handler extends it (working()). */
const ACK_WAIT_MS = 30_000;
const WORKING_INTERVAL_MS = ACK_WAIT_MS / 3;

const DEFAULT_PUBLISH_TIMEOUT_MS = 5_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_RECONNECT_DELAY_MS = 5_000;
/** Stream repairs (after a reconnect or a publish that found no stream) run at most this often. */
const REPAIR_INTERVAL_MS = 2_000;
/** NATS error codes that say "the server cannot be used right now", not "this message is wrong". */
const UNAVAILABLE_CODES = new Set([
  'TIMEOUT',
  '503',
  '408',
  'CONNECTION_CLOSED',
  'CONNECTION_DRAINING',
  'CONNECTION_REFUSED',
  'CONNECTION_TIMEOUT',
  'DISCONNECT',
]);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Creates the stream, or adds our subject to an existing one; other settings of an existing stream are left. */
async function ensureStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string; subjects: string[] },
) {
  try {
    const info = await jsm.streams.info(config.name);
    const missing = config.subjects.filter((s) => !info.config.subjects?.includes(s));
    if (missing.length > 0) {
      await jsm.streams.update(config.name, {
        ...info.config,
        subjects: [...(info.config.subjects ?? []), ...missing],
      });
    }
  } catch (error) {
    if (!isNotFound(error)) throw error;
    try {
      await jsm.streams.add(config);
    } catch (addError) {
      // Another process may have created it meanwhile; anything else (e.g. overlapping subjects) is fatal.
      await jsm.streams.info(config.name).catch(() => {
        throw new Error(`Cannot create JetStream stream ${config.name}: ${errorMessage(addError)}`);
      });
    }
  }
}

/** Whether a NATS error means the server cannot be used now (rather than that the message was refused). */
export function isNatsUnavailable(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (typeof e?.code === 'string' && UNAVAILABLE_CODES.has(e.code)) return true;
  return /\b(timeout|no responders|disconnect(ed)?|connection (closed|draining|refused))\b/i.test(
    String(e?.message ?? ''),
  );
}

interface LinkOptions {
  servers: string[];
  name: string;
  stream: string;
  logger: Logger | undefined;
  publishTimeoutMs: number;
  connectTimeoutMs: number;
  maxReconnectDelayMs: number;
  duplicateWindowMs: number;
}

/** What the subscriptions share: the connection link and settings. */
interface Dependencies {
  link: NatsLink;
  stream: string;
  logger: Logger | undefined;
  pullExpiresMs: number;
}

/**
 * The connection to NATS, made and kept in the background. It never blocks callers: `createNatsBus` makes one
 * attempt, and when the server cannot be reached the link keeps trying (backoff up to `maxReconnectDelayMs`)
 * while the bus serves: publishes fail fast with `BusUnavailableError`, subscriptions wait. Once connected,
 * nats.js reconnects forever by itself; the streams are put back in place after each reconnect (a server that
 * lost its state gets them again). Each state change is logged once and reported to the listeners.
 */
class NatsLink {
  state: NatsConnectionState = 'connecting';
  nc: NatsConnection | null = null;
  js: JetStreamClient | null = null;
  jsm: JetStreamManager | null = null;
  private readonly listeners = new Set<(state: NatsConnectionState) => void>();
  private readonly closing = new AbortController();
  private connector: Promise<void> | null = null;
  private repairing: Promise<void> | null = null;
  private lastRepair = 0;
  private everUp = false;
  private lastFailure = '';

  constructor(private readonly options: LinkOptions) {}

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** One attempt now; when it fails the background loop keeps trying. Never throws. */
  async start(): Promise<void> {
    if (!(await this.attempt())) this.reconnectInBackground();
  }

  /** The JetStream handles while up; otherwise a BusUnavailableError (callers fail fast). */
  require(): { js: JetStreamClient; jsm: JetStreamManager } {
    if (this.state === 'closed') throw new Error('The event bus is closed');
    if (this.state !== 'up' || !this.js || !this.jsm) {
      throw new BusUnavailableError(
        this.state === 'connecting' ? 'NATS is not connected yet' : 'NATS is disconnected; reconnecting',
      );
    }
    return { js: this.js, jsm: this.jsm };
  }

  onChange(listener: (state: NatsConnectionState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves at the next `up` (at once when up), or when `signal` aborts or the link closes. */
  waitUp(signal?: AbortSignal): Promise<void> {
    if (this.state === 'up' || this.state === 'closed' || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        off();
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const off = this.onChange((state) => {
        if (state === 'up' || state === 'closed') done();
      });
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Puts the streams back in place soon (a publish found none: the server may have lost its state). */
  repairSoon(): void {
    if (this.state !== 'up' || Date.now() - this.lastRepair < REPAIR_INTERVAL_MS) return;
    void this.repair();
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasUp = this.state === 'up';
    this.setState('closed');
    this.closing.abort();
    const nc = this.nc;
    this.nc = null;
    this.js = null;
    this.jsm = null;
    if (!nc || nc.isClosed()) return;
    // Draining needs the server: while disconnected (or when it does not answer in time) just close.
    const drained = wasUp && !nc.isDraining() ? nc.drain() : Promise.reject(new Error('not connected'));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('drain timed out')), this.options.connectTimeoutMs);
    });
    try {
      await Promise.race([drained, deadline]);
    } catch {
      await nc.close().catch(() => undefined);
    } finally {
      clearTimeout(timer);
      drained.catch(() => undefined);
    }
  }

  private get log() {
    return this.options.logger;
  }

  private setState(state: NatsConnectionState): void {
    if (this.state === state || this.state === 'closed') return;
    const before = this.state;
    this.state = state;
    if (state === 'up') {
      this.lastFailure = '';
      if (!this.everUp) this.log?.info({ state }, 'NATS connected: events flow');
      else this.log?.info({ state, before }, 'NATS connection restored: events flow again');
      this.everUp = true;
    } else if (state === 'down') {
      this.log?.warn({ state }, 'NATS connection lost: reconnecting; events wait in the outbox');
    }
    for (const listener of [...this.listeners]) listener(state);
  }

  private reconnectInBackground(): void {
    this.connector ??= (async () => {
      let delay = 250;
      while (!this.closed && this.state !== 'up') {
        await sleepUnlessAborted(delay / 2 + Math.random() * (delay / 2), this.closing.signal);
        if (this.closed) break;
        if (await this.attempt()) break;
        delay = Math.min(delay * 2, this.options.maxReconnectDelayMs);
      }
    })().finally(() => {
      this.connector = null;
    });
  }

  /** Connects when there is no connection, then puts the streams in place. True when up. */
  private async attempt(): Promise<boolean> {
    try {
      let nc = this.nc;
      if (!nc) {
        nc = await connect({
          servers: this.options.servers,
          name: this.options.name,
          timeout: this.options.connectTimeoutMs,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 1_000,
          reconnectJitter: 500,
          pingInterval: 20_000,
          maxPingOut: 3,
        });
        if (this.closed) {
          await nc.close().catch(() => undefined);
          return false;
        }
        this.adopt(nc);
      }
      await this.ensureStreams();
      this.setState('up');
      return true;
    } catch (error) {
      const message = errorMessage(error);
      if (message !== this.lastFailure) {
        this.lastFailure = message;
        this.log?.warn(
          { err: message },
          this.everUp
            ? 'NATS not usable yet; retrying in the background'
            : 'NATS is not reachable: the service runs and connects in the background; events wait in the outbox',
        );
      }
      return false;
    }
  }

  private adopt(nc: NatsConnection): void {
    this.nc = nc;
    this.js = nc.jetstream({ timeout: this.options.publishTimeoutMs });
    this.jsm = null;
    void this.watch(nc).catch(() => undefined);
    void nc.closed().then(() => {
      // Closed without close(): start over (a new connection, in the background).
      if (this.closed || this.nc !== nc) return;
      this.nc = null;
      this.js = null;
      this.jsm = null;
      this.setState('down');
      this.reconnectInBackground();
    });
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (this.nc !== nc) return;
      if (status.type === 'disconnect') this.setState('down');
      else if (status.type === 'reconnect') {
        this.setState('up');
        void this.repair();
      } else if (status.type === 'error') {
        // Only the status type and text: never server addresses with credentials.
        this.log?.warn({ status: status.type, err: String(status.data) }, 'nats connection error');
      }
    }
  }

  private repair(): Promise<void> {
    this.repairing ??= this.ensureStreams()
      .catch((error: unknown) => {
        this.log?.warn({ err: errorMessage(error) }, 'could not put the JetStream streams back in place');
      })
      .finally(() => {
        this.repairing = null;
      });
    return this.repairing;
  }

  private async ensureStreams(): Promise<void> {
    const nc = this.nc;
    if (!nc) throw new BusUnavailableError('NATS is not connected');
    this.lastRepair = Date.now();
    this.jsm ??= await nc.jetstreamManager({ timeout: this.options.connectTimeoutMs });
    await ensureStream(this.jsm, {
      name: this.options.stream,
      subjects: [EVENT_SUBJECTS],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(EVENT_MAX_AGE_MS),
      duplicate_window: nanos(this.options.duplicateWindowMs),
    });
    await ensureStream(this.jsm, {
      name: DEAD_LETTER_STREAM,
      subjects: [`${DEAD_LETTER_PREFIX}.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(DEAD_LETTER_MAX_AGE_MS),
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    });
  }
}

/** Decodes and validates a delivered message; throws with the reason when it is not a valid event. */
function decodeEvent(m: JsMsg): AivaEvent {
  const event = validateEvent(JSON.parse(decoder.decode(m.data)));
  if (event.type !== m.subject)
    throw new Error(`Event type ${event.type} does not match subject ${m.subject}`);
  return event;
}

/** Best-effort envelope of an invalid message, for the dead letter. */
function rawEnvelope(m: JsMsg): AivaEvent {
  const text = decoder.decode(m.data);
  try {
    return JSON.parse(text) as AivaEvent;
  } catch {
    const id = m.headers?.get('Nats-Msg-Id') ?? '';
    return { id, type: m.subject, occurredAt: '', source: '', data: text } as unknown as AivaEvent;
  }
}

/**
 * A running subscription. It pulls one message at a time (`next()`), so while a handler runs there is no
 * open pull request the server could fill: stopping after the final ack cannot strand a message in a
 * closed inbox (it would only come back after the ack wait). A message that fills the last pull request
 * after stop() is handed back with a nak, for the next subscriber.
 *
 * While NATS is down the loop waits for the connection; the durable is created (or re-created, when the
 * server lost it) once it can be.
 */
class NatsSubscription implements Subscription {
  private stopping = false;
  private readonly stopped = new AbortController();
  /** The delivery being handled, so stop() can wait for it. */
  private handling: Promise<void> | null = null;
  /** The pull loop; ends at most one pull wait (pullExpiresMs) after stop(). */
  private loop: Promise<void> | null = null;
  private consumer: Consumer | null = null;

  constructor(
    private readonly deps: Dependencies,
    private readonly name: string,
    private readonly type: EventType,
    private readonly durable: string,
    private readonly handler: EventHandler<EventType>,
    private readonly options: Required<SubscribeOptions>,
    /** The durable was created or checked by subscribe(). */
    private ensured: boolean,
  ) {}

  start(): void {
    this.loop = this.pull();
  }

  /** Stops handling: waits for the delivery in progress; the pull loop winds down in the background. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopped.abort();
    await this.handling;
  }

  /** Resolves once the pull loop has ended (for close(), before the connection goes). */
  async finished(): Promise<void> {
    await this.loop;
  }

  private async open(): Promise<Consumer> {
    const { js, jsm } = this.deps.link.require();
    if (!this.ensured) await ensureConsumer(jsm, this.deps.stream, this.name, this.type, this.options);
    this.ensured = true;
    return js.consumers.get(this.deps.stream, this.durable);
  }

  private async pull(): Promise<void> {
    let failures = 0;
    const { link } = this.deps;
    while (!this.stopping && !link.closed) {
      if (link.state !== 'up') {
        await link.waitUp(this.stopped.signal);
        continue;
      }
      let m: JsMsg | null;
      try {
        this.consumer ??= await this.open();
        m = await this.consumer.next({ expires: this.deps.pullExpiresMs });
        failures = 0;
      } catch (error) {
        // Consumer or stream gone, no JetStream, disconnected: keep trying, quietly after the first report.
        if (failures++ === 0) {
          this.log?.warn(
            { consumer: this.name, durable: this.durable, err: errorMessage(error) },
            'event pull failed',
          );
        }
        if (failures >= 2) {
          // Open it again, re-creating the durable when the server lost it.
          this.consumer = null;
          this.ensured = false;
        }
        await sleepUnlessAborted(Math.min(failures * 500, 5_000), this.stopped.signal);
        continue;
      }
      if (!m) continue;
      if (this.stopping) {
        this.settle(() => m.nak());
        break;
      }
      this.handling = this.handle(m).catch((error: unknown) => {
        // Only reachable when the connection closes mid-delivery; the server redelivers the message.
        this.log?.warn(
          { consumer: this.name, durable: this.durable, err: errorMessage(error) },
          'event delivery aborted',
        );
      });
      await this.handling;
      this.handling = null;
    }
  }

  /** Acks and naks are fire-and-forget publishes; they throw only once the connection is closed. */
  private settle(action: () => void): void {
    try {
      action();
    } catch (error) {
      this.log?.warn({ consumer: this.name, err: errorMessage(error) }, 'could not answer the server');
    }
  }

  private get log() {
    return this.deps.logger;
  }

  private async handle(m: JsMsg): Promise<void> {
    // A replayed dead letter (see admin/nats-admin.ts) is for one consumer; the others let it pass unseen.
    const replayFor = m.headers?.get(REPLAY_FOR_HEADER) || null;
    if (replayFor !== null && replayFor !== this.name) {
      await this.ackQuietly(m);
      return;
    }
    const delivery = m.info.deliveryCount;
    let event: AivaEvent;
    try {
      event = decodeEvent(m);
    } catch (error) {
      // Retrying cannot make an invalid message valid.
      await this.deadLetter(m, rawEnvelope(m), errorMessage(error), delivery);
      return;
    }
    if (delivery > this.options.maxDeliver) {
      // The durable allows one delivery more than maxDeliver: the final attempt never completed (crash,
      // ack timeout), so the event is dead-lettered now instead of silently running out of deliveries.
      const error = 'Delivery limit reached: the final delivery did not complete';
      await this.deadLetter(m, event, error, delivery);
      return;
    }
    // Tell the server the handler is still busy, so a slow handler is not redelivered meanwhile.
    const heartbeat = setInterval(() => this.settle(() => m.working()), WORKING_INTERVAL_MS);
    try {
      await this.handler(event);
    } catch (error) {
      await this.failed(m, event, error, delivery);
      return;
    } finally {
      clearInterval(heartbeat);
    }
    await this.ack(m, event);
  }

  private async failed(m: JsMsg, event: AivaEvent, error: unknown, delivery: number): Promise<void> {
    if (delivery >= this.options.maxDeliver) {
      await this.deadLetter(m, event, errorMessage(error), delivery);
      return;
    }
    this.log?.warn(
      { consumer: this.name, eventId: event.id, type: event.type, delivery, err: errorMessage(error) },
      'event handler failed; will retry',
    );
    this.settle(() => m.nak(backoffFor(this.options.backoffMs, delivery)));
  }

  private async ack(m: JsMsg, event: AivaEvent): Promise<void> {
    try {
      // ackAck waits for the server, so a stop() right after cannot lose the ack.
      await m.ackAck();
    } catch (error) {
      // The event will be redelivered; handlers are idempotent by event id.
      this.log?.warn(
        { consumer: this.name, eventId: event.id, err: errorMessage(error) },
        'event ack failed',
      );
      return;
    }
    await this.settleReplay(m);
  }

  /** Acks a message this consumer has nothing to do with; a failure only means it comes back. */
  private async ackQuietly(m: JsMsg): Promise<void> {
    try {
      await m.ackAck();
    } catch (error) {
      this.log?.debug({ consumer: this.name, err: errorMessage(error) }, 'ack of a foreign replay failed');
    }
  }

  /**
   * A replayed dead letter is done with (delivered, or dead-lettered again as a new one): delete the old dead
   * letter. Best effort: it may be gone already (discarded, or a redelivery of the replay settled it).
   */
  private async settleReplay(m: JsMsg): Promise<void> {
    const replayOf = Number(m.headers?.get(REPLAY_OF_HEADER) || Number.NaN);
    if (!Number.isSafeInteger(replayOf) || replayOf < 1) return;
    try {
      await this.deps.link.require().jsm.streams.deleteMessage(DEAD_LETTER_STREAM, replayOf);
    } catch (error) {
      if (isNotFound(error)) return;
      this.log?.warn(
        { consumer: this.name, deadLetter: replayOf, err: errorMessage(error) },
        'could not remove a replayed dead letter',
      );
    }
  }

  /** Stores the event and error in the dead-letter stream, then terminates the message. */
  private async deadLetter(m: JsMsg, event: AivaEvent, error: string, deliveries: number): Promise<void> {
    const letter: DeadLetter = {
      consumer: this.name,
      event,
      error,
      deliveries,
      failedAt: new Date().toISOString(),
    };
    try {
      const { js } = this.deps.link.require();
      await js.publish(deadLetterSubject(this.name, m.subject), encoder.encode(JSON.stringify(letter)), {
        // A crash between this publish and term() redelivers; the id keeps a single dead letter.
        msgID: `${this.durable}:${m.info.streamSequence}`,
        expect: { streamName: DEAD_LETTER_STREAM },
      });
      m.term();
      this.log?.error(
        { consumer: this.name, eventId: event.id, type: m.subject, deliveries, err: error },
        'event dead-lettered',
      );
      await this.settleReplay(m);
    } catch (publishError) {
      this.log?.error(
        { consumer: this.name, eventId: event.id, err: errorMessage(publishError) },
        'dead-lettering failed; the event will be redelivered',
      );
      this.settle(() => m.nak(backoffFor(this.options.backoffMs, deliveries)));
    }
  }
}

/** Creates the durable, or brings the mutable settings of an existing one up to date. */
async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  consumer: string,
  type: EventType,
  options: Required<SubscribeOptions>,
): Promise<string> {
  const durable = durableName(consumer, type);
  const mutable = {
    description: `${consumer} <- ${type}`,
    ack_wait: nanos(ACK_WAIT_MS),
    // One more than maxDeliver: see NatsSubscription.handle.
    max_deliver: options.maxDeliver + 1,
    // One message in flight keeps deliveries in order, retries included.
    max_ack_pending: 1,
  };
  let info: ConsumerInfo | null = null;
  try {
    info = await jsm.consumers.info(stream, durable);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  if (!info) {
    const config: Partial<ConsumerConfig> = {
      ...mutable,
      durable_name: durable,
      filter_subject: type,
      ack_policy: AckPolicy.Explicit,
      // A new consumer starts with events published from now on (like the memory bus).
      deliver_policy: DeliverPolicy.New,
    };
    await jsm.consumers.add(stream, config);
    return durable;
  }
  if (info.config.filter_subject !== type) {
    throw new Error(
      `Durable ${durable} already exists for ${info.config.filter_subject ?? 'another subject'}`,
    );
  }
  const current = info.config;
  if (
    current.max_deliver !== mutable.max_deliver ||
    current.max_ack_pending !== mutable.max_ack_pending ||
    current.ack_wait !== mutable.ack_wait ||
    current.description !== mutable.description
  ) {
    await jsm.consumers.update(stream, durable, mutable);
  }
  return durable;
}

/** Reads all dead letters of a consumer (see readDeadLetterMessages). */
async function readDeadLetters(link: NatsLink, consumer: string): Promise<DeadLetter[]> {
  const { js, jsm } = link.require();
  const messages = await readDeadLetterMessages(js, jsm, consumer);
  return messages.map((m) => m.letter);
}

/**
 * The production event bus on NATS JetStream. Events go to stream `AIVA` (subjects `aiva.>`, subject = event
 * type) with `Nats-Msg-Id` = event id for deduplication. Each (consumer, type) is a durable pull consumer with
 * explicit acks and one message in flight; failures are nak'ed with the subscription's backoff, and after
 * `maxDeliver` failures the event and error go to stream `AIVA_DLQ` (`aiva_dlq.<consumer>.<type>`).
 *
 * NATS is a soft dependency: this makes one connection attempt and returns the bus either way. While the server
 * cannot be reached the bus connects in the background (see `NatsLink`): `publish` fails fast with
 * `BusUnavailableError` (the outbox relay keeps the events and retries), `subscribe` registers and starts pulling
 * once connected, `ping` throws. Publishes have a deadline (`publishTimeoutMs`).
 */
export async function createNatsBus(options: NatsBusOptions): Promise<NatsBus> {
  const logger = options.logger?.child({ component: 'event-bus' });
  const stream = options.stream ?? DEFAULT_STREAM;
  const link = new NatsLink({
    servers: options.url.split(',').map((s) => s.trim()),
    name: options.source ? `aiva-${options.source}` : 'aiva',
    stream,
    logger,
    publishTimeoutMs: positive(options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS, 'publishTimeoutMs'),
    connectTimeoutMs: positive(options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, 'connectTimeoutMs'),
    maxReconnectDelayMs: positive(
      options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS,
      'maxReconnectDelayMs',
    ),
    duplicateWindowMs: positive(options.duplicateWindowMs ?? DUPLICATE_WINDOW_MS, 'duplicateWindowMs'),
  });
  await link.start();
  const pullExpiresMs = Math.max(1_000, options.pullExpiresMs ?? 5_000);
  return buildBus(
    { link, stream, logger, pullExpiresMs },
    options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS,
  );
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a number > 0`);
  return value;
}

function buildBus(deps: Dependencies, publishTimeoutMs: number): NatsBus {
  const { link } = deps;
  const subscriptions = new Set<NatsSubscription>();
  let closed = false;

  function assertOpen(): void {
    if (closed || link.closed) throw new Error('The event bus is closed');
  }

  async function publish(event: AivaEvent): Promise<void> {
    assertOpen();
    const valid = validateEvent(event);
    const { js } = link.require();
    try {
      await js.publish(valid.type, encoder.encode(JSON.stringify(valid)), {
        msgID: valid.id,
        expect: { streamName: deps.stream },
        timeout: publishTimeoutMs,
      });
    } catch (error) {
      if (!isNatsUnavailable(error)) throw error;
      // No responder: the stream may be gone (a server that lost its state) - put it back for the retry.
      link.repairSoon();
      throw new BusUnavailableError(`NATS publish failed: ${errorMessage(error)}`, { cause: error });
    }
  }

  async function subscribe<T extends EventType>(
    consumer: string,
    type: T,
    handler: EventHandler<T>,
    subscribeOptions?: SubscribeOptions,
  ): Promise<Subscription> {
    assertOpen();
    assertSubscribable(consumer, type);
    const options = resolveSubscribeOptions(subscribeOptions);
    const durable = durableName(consumer, type);
    let ensured = false;
    if (link.state === 'up') {
      try {
        await ensureConsumer(link.require().jsm, deps.stream, consumer, type, options);
        ensured = true;
      } catch (error) {
        // A conflicting durable is a mistake to report now; a connection that just dropped is retried.
        if (!isNatsUnavailable(error) && !(error instanceof BusUnavailableError)) throw error;
      }
    }
    const subscription = new NatsSubscription(
      deps,
      consumer,
      type,
      durable,
      handler as unknown as EventHandler<EventType>,
      options,
      ensured,
    );
    subscription.start();
    subscriptions.add(subscription);
    // Forget it once its pull loop is over (after stop()).
    void subscription.finished().then(() => subscriptions.delete(subscription));
    return subscription;
  }

  async function removeConsumer(consumer: string): Promise<void> {
    assertOpen();
    const { jsm } = link.require();
    const prefix = `${natsToken(consumer)}__`;
    for await (const info of jsm.consumers.list(deps.stream)) {
      if (info.name.startsWith(prefix)) await jsm.consumers.delete(deps.stream, info.name);
    }
    await jsm.streams.purge(DEAD_LETTER_STREAM, {
      filter: deadLetterFilter(consumer),
    });
  }

  const toBusState = (state: NatsConnectionState): BusState => (state === 'up' ? 'up' : 'down');

  return {
    kind: 'nats',
    publish,
    subscribe,
    removeConsumer,
    get state() {
      return link.state;
    },
    deadLetters: async (consumer) => {
      assertOpen();
      return readDeadLetters(link, consumer);
    },
    admin() {
      assertOpen();
      return createNatsBusAdmin({ handles: () => link.require(), stream: deps.stream });
    },
    async ping() {
      assertOpen();
      await link.require().jsm.getAccountInfo();
    },
    whenUp(timeoutMs) {
      if (link.state === 'up') return Promise.resolve();
      if (link.closed) return Promise.reject(new Error('The event bus is closed'));
      return new Promise<void>((resolve, reject) => {
        const timer =
          timeoutMs === undefined
            ? undefined
            : setTimeout(() => {
                off();
                reject(new BusUnavailableError(`NATS did not connect within ${timeoutMs} ms`));
              }, timeoutMs);
        const off = link.onChange((state) => {
          if (state !== 'up' && state !== 'closed') return;
          off();
          clearTimeout(timer);
          if (state === 'up') resolve();
          else reject(new Error('The event bus is closed'));
        });
      });
    },
    watchState(listener) {
      listener(toBusState(link.state));
      return link.onChange((state) => listener(toBusState(state)));
    },
    async close() {
      if (closed) return;
      closed = true;
      const running = [...subscriptions];
      await Promise.allSettled(running.map((s) => s.stop()));
      // Wait for open pulls to end, so a message arriving now is nak'ed rather than lost with the connection.
      await Promise.allSettled(running.map((s) => s.finished()));
      await link.close();
    },
  };
}
