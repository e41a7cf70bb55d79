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
import type { DeadLetter, EventBus, EventHandler, SubscribeOptions, Subscription } from './bus.js';
import type { EventType } from './catalog.js';
import {
  assertSubscribable,
  backoffFor,
  errorMessage,
  resolveSubscribeOptions,
  validateEvent,
} from './delivery.js';
import type { AivaEvent } from './event.js';

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
}

/** The NATS bus has one extra operation for operations and tests. */
export interface NatsBus extends EventBus {
  readonly kind: 'nats';
  /**
   * Deletes every durable of a consumer name (all event types) and its dead letters. The consumer's position
   * is lost: the next subscribe starts with new events only. Meant for retiring a consumer and for tests.
   */
  removeConsumer(consumer: string): Promise<void>;
}

export const DEFAULT_STREAM = 'AIVA';
export const EVENT_SUBJECTS = 'aiva.>';
export const DEAD_LETTER_STREAM = 'AIVA_DLQ';
const DEAD_LETTER_PREFIX = 'aiva_dlq';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Events are kept a week: a consumer stopped for longer misses events. */
const EVENT_MAX_AGE_MS = 7 * DAY_MS;
const DEAD_LETTER_MAX_AGE_MS = 30 * DAY_MS;
/** Publishing the same Nats-Msg-Id within this window is deduplicated by JetStream. */
const DUPLICATE_WINDOW_MS = 2 * 60 * 1000;
/** The server redelivers a message not acked within this time; a running handler extends it (working()). */
const ACK_WAIT_MS = 30_000;
const WORKING_INTERVAL_MS = ACK_WAIT_MS / 3;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A NATS name token: no dots, wildcards, whitespace or path separators. */
export function natsToken(value: string): string {
  return value.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** One durable per (consumer, type), so one consumer name can subscribe to several types. */
export function durableName(consumer: string, type: string): string {
  return `${natsToken(consumer)}__${natsToken(type)}`;
}

function deadLetterSubject(consumer: string, type: string): string {
  return `${DEAD_LETTER_PREFIX}.${natsToken(consumer)}.${type}`;
}

function isNotFound(error: unknown): boolean {
  const e = error as { code?: unknown; api_error?: { code?: number } } | null;
  return e?.api_error?.code === 404 || e?.code === '404';
}

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

interface Dependencies {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  logger: Logger | undefined;
  pullExpiresMs: number;
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
 */
class NatsSubscription implements Subscription {
  private stopping = false;
  /** The delivery being handled, so stop() can wait for it. */
  private handling: Promise<void> | null = null;
  /** The pull loop; ends at most one pull wait (pullExpiresMs) after stop(). */
  private loop: Promise<void> | null = null;

  constructor(
    private readonly deps: Dependencies,
    private readonly consumer: string,
    private readonly durable: string,
    private readonly handler: EventHandler<EventType>,
    private readonly options: Required<SubscribeOptions>,
  ) {}

  async start(): Promise<void> {
    const consumer = await this.deps.js.consumers.get(this.deps.stream, this.durable);
    this.loop = this.pull(consumer);
  }

  /** Stops handling: waits for the delivery in progress; the pull loop winds down in the background. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.handling;
  }

  /** Resolves once the pull loop has ended (for close(), before the connection goes). */
  async finished(): Promise<void> {
    await this.loop;
  }

  private async pull(consumer: Consumer): Promise<void> {
    let failures = 0;
    while (!this.stopping && !this.deps.nc.isClosed()) {
      let m: JsMsg | null;
      try {
        m = await consumer.next({ expires: this.deps.pullExpiresMs });
        failures = 0;
      } catch (error) {
        // Consumer or stream gone, no JetStream, disconnected: keep trying, quietly after the first report.
        if (failures++ === 0) {
          this.log?.warn(
            { consumer: this.consumer, durable: this.durable, err: errorMessage(error) },
            'event pull failed',
          );
        }
        await sleep(Math.min(failures * 500, 5_000));
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
          { consumer: this.consumer, durable: this.durable, err: errorMessage(error) },
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
      this.log?.warn({ consumer: this.consumer, err: errorMessage(error) }, 'could not answer the server');
    }
  }

  private get log() {
    return this.deps.logger;
  }

  private async handle(m: JsMsg): Promise<void> {
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
      { consumer: this.consumer, eventId: event.id, type: event.type, delivery, err: errorMessage(error) },
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
        { consumer: this.consumer, eventId: event.id, err: errorMessage(error) },
        'event ack failed',
      );
    }
  }

  /** Stores the event and error in the dead-letter stream, then terminates the message. */
  private async deadLetter(m: JsMsg, event: AivaEvent, error: string, deliveries: number): Promise<void> {
    const letter: DeadLetter = {
      consumer: this.consumer,
      event,
      error,
      deliveries,
      failedAt: new Date().toISOString(),
    };
    try {
      await this.deps.js.publish(
        deadLetterSubject(this.consumer, m.subject),
        encoder.encode(JSON.stringify(letter)),
        {
          // A crash between this publish and term() redelivers; the id keeps a single dead letter.
          msgID: `${this.durable}:${m.info.streamSequence}`,
          expect: { streamName: DEAD_LETTER_STREAM },
        },
      );
      m.term();
      this.log?.error(
        { consumer: this.consumer, eventId: event.id, type: m.subject, deliveries, err: error },
        'event dead-lettered',
      );
    } catch (publishError) {
      this.log?.error(
        { consumer: this.consumer, eventId: event.id, err: errorMessage(publishError) },
        'dead-lettering failed; the event will be redelivered',
      );
      this.settle(() => m.nak(backoffFor(this.options.backoffMs, deliveries)));
    }
  }
}

/** Creates the durable, or brings the mutable settings of an existing one up to date. */
async function ensureConsumer(
  deps: Dependencies,
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
    info = await deps.jsm.consumers.info(deps.stream, durable);
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
    await deps.jsm.consumers.add(deps.stream, config);
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
    await deps.jsm.consumers.update(deps.stream, durable, mutable);
  }
  return durable;
}

/** Reads all dead letters of a consumer through a short-lived ephemeral consumer on the DLQ stream. */
async function readDeadLetters(deps: Dependencies, consumer: string): Promise<DeadLetter[]> {
  const info = await deps.jsm.consumers.add(DEAD_LETTER_STREAM, {
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.All,
    filter_subject: `${DEAD_LETTER_PREFIX}.${natsToken(consumer)}.>`,
    inactive_threshold: nanos(30_000),
    mem_storage: true,
  });
  const letters: DeadLetter[] = [];
  try {
    const reader = await deps.js.consumers.get(DEAD_LETTER_STREAM, info.name);
    let remaining = info.num_pending;
    while (remaining > 0) {
      const batch = await reader.fetch({ max_messages: Math.min(remaining, 256), expires: 2_000 });
      let received = 0;
      for await (const m of batch) {
        received++;
        remaining--;
        const letter = JSON.parse(decoder.decode(m.data)) as DeadLetter;
        // natsToken() is lossy; the stored name tells consumers apart.
        if (letter.consumer === consumer) letters.push(letter);
      }
      if (received === 0) break;
    }
  } finally {
    await deps.jsm.consumers.delete(DEAD_LETTER_STREAM, info.name).catch(() => undefined);
  }
  return letters;
}

async function watchConnection(nc: NatsConnection, logger: Logger | undefined): Promise<void> {
  for await (const status of nc.status()) {
    // Only the status type: data can hold server addresses, never credentials, but keep lines small.
    if (status.type === 'disconnect' || status.type === 'error')
      logger?.warn({ status: status.type }, 'nats connection');
    else if (status.type === 'reconnect') logger?.info({ status: status.type }, 'nats connection');
  }
}

/**
 * The production event bus on NATS JetStream. Events go to stream `AIVA` (subjects `aiva.>`, subject = event
 * type) with `Nats-Msg-Id` = event id for deduplication. Each (consumer, type) is a durable pull consumer with
 * explicit acks and one message in flight; failures are nak'ed with the subscription's backoff, and after
 * `maxDeliver` failures the event and error go to stream `AIVA_DLQ` (`aiva_dlq.<consumer>.<type>`).
 */
export async function createNatsBus(options: NatsBusOptions): Promise<NatsBus> {
  const logger = options.logger?.child({ component: 'event-bus' });
  const stream = options.stream ?? DEFAULT_STREAM;
  const nc = await connect({
    servers: options.url.split(',').map((s) => s.trim()),
    name: options.source ? `aiva-${options.source}` : 'aiva',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1_000,
  });
  void watchConnection(nc, logger).catch(() => undefined);
  try {
    const jsm = await nc.jetstreamManager();
    await ensureStream(jsm, {
      name: stream,
      subjects: [EVENT_SUBJECTS],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(EVENT_MAX_AGE_MS),
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    });
    await ensureStream(jsm, {
      name: DEAD_LETTER_STREAM,
      subjects: [`${DEAD_LETTER_PREFIX}.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(DEAD_LETTER_MAX_AGE_MS),
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    });
    const pullExpiresMs = Math.max(1_000, options.pullExpiresMs ?? 5_000);
    return buildBus({ nc, js: nc.jetstream(), jsm, stream, logger, pullExpiresMs });
  } catch (error) {
    await nc.close().catch(() => undefined);
    throw error;
  }
}

function buildBus(deps: Dependencies): NatsBus {
  const subscriptions = new Set<NatsSubscription>();
  let closed = false;

  function assertOpen(): void {
    if (closed || deps.nc.isClosed()) throw new Error('The event bus is closed');
  }

  async function publish(event: AivaEvent): Promise<void> {
    assertOpen();
    const valid = validateEvent(event);
    await deps.js.publish(valid.type, encoder.encode(JSON.stringify(valid)), {
      msgID: valid.id,
      expect: { streamName: deps.stream },
    });
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
    const durable = await ensureConsumer(deps, consumer, type, options);
    const subscription = new NatsSubscription(
      deps,
      consumer,
      durable,
      handler as unknown as EventHandler<EventType>,
      options,
    );
    await subscription.start();
    subscriptions.add(subscription);
    // Forget it once its pull loop is over (after stop()).
    void subscription.finished().then(() => subscriptions.delete(subscription));
    return subscription;
  }

  async function removeConsumer(consumer: string): Promise<void> {
    const prefix = `${natsToken(consumer)}__`;
    for await (const info of deps.jsm.consumers.list(deps.stream)) {
      if (info.name.startsWith(prefix)) await deps.jsm.consumers.delete(deps.stream, info.name);
    }
    await deps.jsm.streams.purge(DEAD_LETTER_STREAM, {
      filter: `${DEAD_LETTER_PREFIX}.${natsToken(consumer)}.>`,
    });
  }

  return {
    kind: 'nats',
    publish,
    subscribe,
    removeConsumer,
    deadLetters: (consumer) => readDeadLetters(deps, consumer),
    async ping() {
      assertOpen();
      await deps.jsm.getAccountInfo();
    },
    async close() {
      if (closed) return;
      closed = true;
      const running = [...subscriptions];
      await Promise.allSettled(running.map((s) => s.stop()));
      // Wait for open pulls to end, so a message arriving now is nak'ed rather than lost with the connection.
      await Promise.allSettled(running.map((s) => s.finished()));
      if (!deps.nc.isClosed()) await deps.nc.drain().catch(() => undefined);
    },
  };
}
