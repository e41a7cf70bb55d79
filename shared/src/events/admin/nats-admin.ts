import { AckPolicy, DeliverPolicy, headers, type JetStreamClient, type JetStreamManager, nanos } from 'nats';
import type { DeadLetter } from '../bus.js';
import { validateEvent } from '../delivery.js';
import {
  DEAD_LETTER_STREAM,
  deadLetterFilter,
  deadLetterSubject,
  durableName,
  isNotFound,
} from '../nats-names.js';
import {
  type AdminDeadLetter,
  byConsumerAndType,
  type ConsumerStatus,
  DeadLetterNotFoundError,
  deadLetterSeq,
  type EventBusAdmin,
  REPLAY_FOR_HEADER,
  REPLAY_OF_HEADER,
  type StreamStatus,
} from './admin.js';

// The admin side of the NATS bus, over JetStream's management API: stream and consumer info (num_pending is a
// durable's lag), the dead-letter stream (a dead letter's id is its sequence number there) and replays.
//
// A replay is published on the event's own subject (NATS 2.9 consumers filter on one subject, the type), with
// headers naming the consumer it is for and the dead letter it replays: the other durables of the type ack it
// without calling their handler; the named one handles it and then deletes the dead letter (nats.ts).

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** How the admin reaches JetStream: the bus's connection (throws while NATS is down). */
export interface NatsAdminDependencies {
  handles(): { js: JetStreamClient; jsm: JetStreamManager };
  /** The event stream (default `AIVA`). */
  stream: string;
}

/** A stored dead letter with its sequence number in the dead-letter stream. */
export interface StoredDeadLetter {
  seq: number;
  letter: DeadLetter;
}

/**
 * Reads the dead letters of one consumer (or all) through a short-lived ephemeral consumer on the dead-letter
 * stream, oldest first.
 */
export async function readDeadLetterMessages(
  js: JetStreamClient,
  jsm: JetStreamManager,
  consumer?: string,
): Promise<StoredDeadLetter[]> {
  const info = await jsm.consumers.add(DEAD_LETTER_STREAM, {
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.All,
    filter_subject: deadLetterFilter(consumer),
    inactive_threshold: nanos(30_000),
    mem_storage: true,
  });
  const letters: StoredDeadLetter[] = [];
  try {
    const reader = await js.consumers.get(DEAD_LETTER_STREAM, info.name);
    let remaining = info.num_pending;
    while (remaining > 0) {
      const batch = await reader.fetch({ max_messages: Math.min(remaining, 256), expires: 2_000 });
      let received = 0;
      for await (const m of batch) {
        received++;
        remaining--;
        const letter = JSON.parse(decoder.decode(m.data)) as DeadLetter;
        // natsToken() is lossy; the stored name tells consumers apart.
        if (consumer === undefined || letter.consumer === consumer) letters.push({ seq: m.seq, letter });
      }
      if (received === 0) break;
    }
  } finally {
    await jsm.consumers.delete(DEAD_LETTER_STREAM, info.name).catch(() => undefined);
  }
  return letters;
}

/** The server sends `last_active` as an RFC 3339 time (nats.js types it as nanoseconds). */
function isoTime(value: unknown): string | null {
  if (typeof value !== 'string' || value === '') return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) || ms <= 0 ? null : new Date(ms).toISOString();
}

/** `<consumer> <- <type>`: the description the bus gives each durable it creates. */
const DESCRIPTION = /^(.+) <- (\S+)$/;

/** The admin side of a NATS bus (`NatsBus.admin()`). */
export function createNatsBusAdmin(deps: NatsAdminDependencies): EventBusAdmin {
  async function streamStatus(jsm: JetStreamManager, name: string): Promise<StreamStatus | null> {
    try {
      const info = await jsm.streams.info(name);
      return {
        name,
        subjects: info.config.subjects ?? [],
        messages: info.state.messages,
        bytes: info.state.bytes,
        firstSeq: info.state.first_seq,
        lastSeq: info.state.last_seq,
        consumers: info.state.consumer_count,
      };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  /** Dead letters per subject (`aiva_dlq.<consumer token>.<type>`). */
  async function deadLetterCounts(jsm: JetStreamManager): Promise<Record<string, number>> {
    try {
      const info = await jsm.streams.info(DEAD_LETTER_STREAM, { subjects_filter: deadLetterFilter() });
      return info.state.subjects ?? {};
    } catch (error) {
      if (isNotFound(error)) return {};
      throw error;
    }
  }

  async function storedDeadLetter(jsm: JetStreamManager, id: string): Promise<StoredDeadLetter> {
    const seq = deadLetterSeq(id);
    try {
      const message = await jsm.streams.getMessage(DEAD_LETTER_STREAM, { seq });
      return { seq, letter: JSON.parse(decoder.decode(message.data)) as DeadLetter };
    } catch (error) {
      if (isNotFound(error)) throw new DeadLetterNotFoundError(id);
      throw error;
    }
  }

  return {
    kind: 'nats',
    async streams() {
      const { jsm } = deps.handles();
      const streams = await Promise.all([deps.stream, DEAD_LETTER_STREAM].map((n) => streamStatus(jsm, n)));
      return streams.filter((s): s is StreamStatus => s !== null);
    },
    async consumers() {
      const { jsm } = deps.handles();
      const counts = await deadLetterCounts(jsm);
      const rows: ConsumerStatus[] = [];
      for await (const info of jsm.consumers.list(deps.stream)) {
        const named = DESCRIPTION.exec(info.config.description ?? '');
        const consumer = named?.[1] ?? info.name;
        const type = named?.[2] ?? info.config.filter_subject ?? '';
        rows.push({
          consumer,
          type,
          durable: info.name,
          pending: info.num_pending,
          ackPending: info.num_ack_pending,
          redelivered: info.num_redelivered,
          deadLetters: named ? (counts[deadLetterSubject(consumer, type)] ?? 0) : 0,
          lastDelivered: isoTime(info.delivered.last_active),
        });
      }
      return rows.sort(byConsumerAndType);
    },
    async deadLetters(consumer) {
      const { js, jsm } = deps.handles();
      const stored = await readDeadLetterMessages(js, jsm, consumer);
      return stored.map(
        ({ seq, letter }): AdminDeadLetter => ({ ...letter, id: String(seq), type: letter.event.type }),
      );
    },
    async replay(id) {
      const { js, jsm } = deps.handles();
      const { seq, letter } = await storedDeadLetter(jsm, id);
      const event = validateEvent(letter.event);
      try {
        await jsm.consumers.info(deps.stream, durableName(letter.consumer, event.type));
      } catch (error) {
        if (!isNotFound(error)) throw error;
        throw new Error(`Consumer ${letter.consumer} has no position for ${event.type} (removed?)`);
      }
      const h = headers();
      h.set(REPLAY_FOR_HEADER, letter.consumer);
      h.set(REPLAY_OF_HEADER, String(seq));
      // The message id makes a second replay of the same dead letter (within the duplicate window) a no-op.
      await js.publish(event.type, encoder.encode(JSON.stringify(event)), {
        msgID: `replay:${seq}`,
        headers: h,
        expect: { streamName: deps.stream },
      });
      return { id, consumer: letter.consumer, type: event.type, eventId: event.id };
    },
    async discard(id) {
      const { jsm } = deps.handles();
      await storedDeadLetter(jsm, id);
      await jsm.streams.deleteMessage(DEAD_LETTER_STREAM, deadLetterSeq(id));
    },
  };
}
