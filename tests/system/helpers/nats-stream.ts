import { AckPolicy, connect, DeliverPolicy, type NatsConnection } from 'nats';

/** One message of the event stream, as stored by JetStream. */
export interface StoredEvent {
  seq: number;
  subject: string;
  /** The `Nats-Msg-Id` header: the outbox's event id. */
  msgId: string;
  event: { id: string; type: string; data: Record<string, unknown> };
}

/**
 * Reads the whole event stream (default `AIVA`) of a NATS server, oldest first, through a short-lived ephemeral
 * consumer: what was published, duplicates included (a republish after the duplicate window is a message of its
 * own). `subject` narrows it (`aiva.users.>`). Empty when the stream does not exist yet.
 */
export async function readStream(
  url: string,
  options: { stream?: string; subject?: string } = {},
): Promise<StoredEvent[]> {
  const stream = options.stream ?? 'AIVA';
  const nc = await connect({ servers: url, timeout: 2_000, maxReconnectAttempts: 0 });
  try {
    const jsm = await nc.jetstreamManager({ timeout: 2_000 });
    const info = await jsm.streams.info(stream).catch(() => null);
    if (!info || info.state.messages === 0) return [];
    const consumer = await jsm.consumers.add(stream, {
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      ...(options.subject ? { filter_subject: options.subject } : {}),
      mem_storage: true,
      inactive_threshold: 30_000_000_000,
    });
    const events: StoredEvent[] = [];
    try {
      const reader = await nc.jetstream().consumers.get(stream, consumer.name);
      let remaining = consumer.num_pending;
      while (remaining > 0) {
        const batch = await reader.fetch({ max_messages: Math.min(remaining, 500), expires: 2_000 });
        let received = 0;
        for await (const m of batch) {
          received++;
          remaining--;
          events.push({
            seq: m.seq,
            subject: m.subject,
            msgId: m.headers?.get('Nats-Msg-Id') ?? '',
            event: m.json(),
          });
        }
        if (received === 0) break;
      }
    } finally {
      await jsm.consumers.delete(stream, consumer.name).catch(() => undefined);
    }
    return events;
  } finally {
    await nc.close();
  }
}

/** How many times each id occurs in `events` (by `Nats-Msg-Id`). */
export function countById(events: readonly StoredEvent[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of events) counts.set(e.msgId, (counts.get(e.msgId) ?? 0) + 1);
  return counts;
}

/** The stream's duplicate window, in ms (to check what the services created). */
export async function duplicateWindowMs(url: string, stream = 'AIVA'): Promise<number> {
  const nc: NatsConnection = await connect({ servers: url, timeout: 2_000, maxReconnectAttempts: 0 });
  try {
    const jsm = await nc.jetstreamManager({ timeout: 2_000 });
    const info = await jsm.streams.info(stream);
    return Math.round((info.config.duplicate_window ?? 0) / 1_000_000);
  } finally {
    await nc.close();
  }
}

/**
 * Waits until a durable consumer has every message of its subject acknowledged (nothing pending or in flight),
 * i.e. the service's consumer has handled everything published so far.
 */
export async function consumerCaughtUp(url: string, durable: string, stream = 'AIVA'): Promise<boolean> {
  const nc = await connect({ servers: url, timeout: 2_000, maxReconnectAttempts: 0 });
  try {
    const jsm = await nc.jetstreamManager({ timeout: 2_000 });
    const info = await jsm.consumers.info(stream, durable).catch(() => null);
    return info !== null && info.num_pending === 0 && info.num_ack_pending === 0;
  } finally {
    await nc.close();
  }
}
