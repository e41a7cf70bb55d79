import type { SqliteDatabase } from '../../store/sqlite-driver.js';
import { validateEvent } from '../delivery.js';
import type { AivaEvent } from '../event.js';
import {
  type AdminDeadLetter,
  type ConsumerStatus,
  DeadLetterNotFoundError,
  deadLetterSeq,
  type EventBusAdmin,
  type StreamStatus,
} from './admin.js';

// The admin side of the SQLite bus: read-mostly queries over the event log file (`bus_events`, `bus_consumers`,
// `bus_dead_letters`, see sqlite.ts). A replay appends the event again for its consumer only (`target`); the
// subscribers of that file, in whichever process, pick it up on their next poll.

interface StreamRow {
  messages: number;
  first_seq: number | null;
  last_seq: number | null;
  bytes: number | null;
}

interface ConsumerRow {
  consumer: string;
  type: string;
  head_seq: number | null;
  deliveries: number;
  active_at: number;
  behind: number;
  dead: number;
}

interface DeadLetterRow {
  seq: number;
  consumer: string;
  type: string;
  event: string;
  error: string;
  deliveries: number;
  failed_at: number;
}

export interface SqliteAdminHooks {
  /** Throws once the bus is closed. */
  assertOpen(): void;
  /** Wakes this process's subscribers of a type (a replay was appended). */
  wake(type: string): void;
}

/** The admin side of a SQLite bus over its open database (`SqliteBus.admin()`). */
export function createSqliteBusAdmin(db: SqliteDatabase, hooks: SqliteAdminHooks): EventBusAdmin {
  const stmt = {
    events: db.prepare<[], StreamRow>(
      `SELECT count(*) AS messages, min(seq) AS first_seq, max(seq) AS last_seq,
         sum(length(CAST(payload AS BLOB))) AS bytes FROM bus_events`,
    ),
    deadLetterLog: db.prepare<[], StreamRow>(
      `SELECT count(*) AS messages, min(seq) AS first_seq, max(seq) AS last_seq,
         sum(length(CAST(event AS BLOB))) AS bytes FROM bus_dead_letters`,
    ),
    consumerCount: db.prepare<[], number>('SELECT count(*) FROM bus_consumers').pluck(),
    consumers: db.prepare<[], ConsumerRow>(
      `SELECT c.consumer, c.type, c.head_seq, c.deliveries, c.active_at,
         (SELECT count(*) FROM bus_events e
           WHERE e.type = c.type AND e.seq > c.position AND (e.target IS NULL OR e.target = c.consumer)) AS behind,
         (SELECT count(*) FROM bus_dead_letters d WHERE d.consumer = c.consumer AND d.type = c.type) AS dead
       FROM bus_consumers c ORDER BY c.consumer, c.type`,
    ),
    allDeadLetters: db.prepare<[], DeadLetterRow>(
      `SELECT seq, consumer, type, event, error, deliveries, failed_at FROM bus_dead_letters ORDER BY seq`,
    ),
    deadLettersOf: db.prepare<[string], DeadLetterRow>(
      `SELECT seq, consumer, type, event, error, deliveries, failed_at FROM bus_dead_letters
       WHERE consumer = ? ORDER BY seq`,
    ),
    deadLetter: db.prepare<[number], DeadLetterRow>(
      `SELECT seq, consumer, type, event, error, deliveries, failed_at FROM bus_dead_letters WHERE seq = ?`,
    ),
    durableExists: db
      .prepare<[string, string], number>('SELECT 1 FROM bus_consumers WHERE consumer = ? AND type = ?')
      .pluck(),
    appendReplay: db.prepare<[string, string, string, number, string, number]>(
      `INSERT INTO bus_events (id, type, payload, published_at, target, replay_of) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
    ),
    discard: db.prepare<[number]>('DELETE FROM bus_dead_letters WHERE seq = ?'),
  };

  const stream = (name: string, subjects: string[], row: StreamRow, consumers: number): StreamStatus => ({
    name,
    subjects,
    messages: row.messages,
    bytes: row.bytes ?? 0,
    firstSeq: row.first_seq ?? 0,
    lastSeq: row.last_seq ?? 0,
    consumers,
  });

  const toLetter = (row: DeadLetterRow): AdminDeadLetter => ({
    id: String(row.seq),
    consumer: row.consumer,
    type: row.type,
    event: JSON.parse(row.event) as AivaEvent,
    error: row.error,
    deliveries: row.deliveries,
    failedAt: new Date(row.failed_at).toISOString(),
  });

  const replay = db.transaction((seq: number, event: AivaEvent, consumer: string): void => {
    stmt.appendReplay.run(`replay:${seq}`, event.type, JSON.stringify(event), Date.now(), consumer, seq);
  });

  return {
    kind: 'sqlite',
    async streams() {
      hooks.assertOpen();
      return [
        stream('events', ['aiva.>'], stmt.events.get() as StreamRow, stmt.consumerCount.get() ?? 0),
        stream('dead-letters', ['dead letters'], stmt.deadLetterLog.get() as StreamRow, 0),
      ];
    },
    async consumers() {
      hooks.assertOpen();
      return stmt.consumers.all().map((row): ConsumerStatus => {
        // One event in flight per durable: the head, once its first delivery started.
        const ackPending = row.head_seq !== null && row.deliveries > 0 ? 1 : 0;
        return {
          consumer: row.consumer,
          type: row.type,
          durable: `${row.consumer} <- ${row.type}`,
          pending: Math.max(0, row.behind - ackPending),
          ackPending,
          redelivered: ackPending && row.deliveries > 1 ? 1 : 0,
          deadLetters: row.dead,
          // The durable's last claim, ack or subscribe.
          lastDelivered: row.active_at ? new Date(row.active_at).toISOString() : null,
        };
      });
    },
    async deadLetters(consumer) {
      hooks.assertOpen();
      const rows = consumer === undefined ? stmt.allDeadLetters.all() : stmt.deadLettersOf.all(consumer);
      return rows.map(toLetter);
    },
    async replay(id) {
      hooks.assertOpen();
      const seq = deadLetterSeq(id);
      const row = stmt.deadLetter.get(seq);
      if (!row) throw new DeadLetterNotFoundError(id);
      const event = validateEvent(JSON.parse(row.event));
      if (event.type !== row.type) {
        throw new Error(`Dead letter ${id} holds a ${event.type} event, not ${row.type}`);
      }
      if (!stmt.durableExists.get(row.consumer, row.type)) {
        throw new Error(`Consumer ${row.consumer} has no position for ${row.type} (removed?)`);
      }
      replay.immediate(seq, event, row.consumer);
      hooks.wake(event.type);
      return { id, consumer: row.consumer, type: event.type, eventId: event.id };
    },
    async discard(id) {
      hooks.assertOpen();
      if (stmt.discard.run(deadLetterSeq(id)).changes === 0) throw new DeadLetterNotFoundError(id);
    },
  };
}
