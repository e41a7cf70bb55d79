import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../log.js';
import type { SqliteDatabase } from '../store/sqlite-driver.js';
import { openMigratedSqlite } from '../store/sqlite-open.js';
import type { AdministrableBus } from './admin/admin.js';
import { createSqliteBusAdmin } from './admin/sqlite-admin.js';
import type { DeadLetter, EventBus, EventHandler, SubscribeOptions, Subscription } from './bus.js';
import type { EventType } from './catalog.js';
import {
  assertSubscribable,
  backoffFor,
  errorMessage,
  logDeadLetter,
  logRetry,
  resolveSubscribeOptions,
  validateEvent,
} from './delivery.js';
import type { AivaEvent } from './event.js';

// ---------------------------------------------------------------------------------------------------------------
// The embedded, cross-process bus: an event log in one SQLite file (WAL) shared by the machine's processes
// ---------------------------------------------------------------------------------------------------------------

export interface SqliteBusOptions {
  /** The database file (its directory is created when missing); every process of the machine opens it. */
  file: string;
  /** The service using the bus; part of the lease owner id (visible in the file, handy when debugging). */
  source?: string;
  logger?: Logger;
  /** How often other processes' publishes are looked for, in ms (default 50). */
  pollIntervalMs?: number;
  /** Events are kept this long (default 7 days, like the JetStream stream); see `prune()`. */
  retentionMs?: number;
  /** Dead letters are kept this long (default 30 days). */
  deadLetterRetentionMs?: number;
  /**
   * How long a claimed event stays with its subscriber before another may take it over, in ms (default
   * 30,000, JetStream's ack wait). A running handler renews it every third of that; a crashed process stops
   * renewing.
   */
  leaseMs?: number;
  /**
   * While another process waits for the same durable, a subscriber hands the durable over after handling
   * events for this long, in ms (default 500): competing processes take turns instead of one doing all work.
   */
  turnMs?: number;
  /** The retention cleanup runs at most this often, piggybacking on publish and the poll (default 10 min). */
  pruneIntervalMs?: number;
}

/** The SQLite bus has a few extra operations for operations and tests. */
export interface SqliteBus extends EventBus, AdministrableBus {
  readonly kind: 'sqlite';
  /** The database file. */
  readonly file: string;
  /**
   * Deletes every durable of a consumer name (all event types) and its dead letters. The position is lost:
   * the next subscribe starts with new events only. Meant for retiring a consumer and for tests.
   */
  removeConsumer(consumer: string): Promise<void>;
  /** Runs the retention cleanup now (it also runs every `pruneIntervalMs`); returns how many rows went. */
  prune(): Promise<{ events: number; deadLetters: number }>;
}

/** The name of this schema in `schema_migrations`: the bus may share its file with other stores. */
export const SQLITE_BUS_SCHEMA_COMPONENT = 'event-bus';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Rows deleted per transaction by the cleanup, so it never holds the write lock for long. */
const PRUNE_BATCH = 5_000;
const MAX_SEQ = '9223372036854775807';

/**
 * Schema migrations, recorded as `event-bus` in `schema_migrations`. Append new steps, never edit old ones.
 * Times are epoch milliseconds.
 *
 * - `bus_events`: the log. `seq` orders it (AUTOINCREMENT: never reused, so a position stays meaningful after
 *   pruning); `id` is unique, which is the deduplication (as long as the row is kept: at least the
 *   retention).
 * - `bus_consumers`: one row per durable (consumer, type). `position` is the last seq done with (acked or
 *   dead-lettered); `head_seq`/`deliveries`/`retry_at` describe the delivery attempts of the next event;
 *   `lease_owner`/`lease_until` say which subscriber holds the durable (one event in flight); `turn_started`
 *   and `waiter`/`waiter_at` let competing processes take turns; `active_at` marks the last claim, ack or
 *   subscribe.
 * - `bus_dead_letters`: events given up on, with the error and the number of deliveries.
 * - (2) A replayed dead letter goes back into the log for one consumer only: `target` names it (NULL: every
 *   durable of the type), `replay_of` the dead letter, deleted once the replay is delivered or dead again. Its
 *   `id` is `replay:<dead letter seq>`, so replaying twice appends it once.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE bus_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    payload      TEXT NOT NULL CHECK (json_valid(payload)),
    published_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX bus_events_type_seq ON bus_events (type, seq);
  CREATE INDEX bus_events_published_at ON bus_events (published_at);

  CREATE TABLE bus_consumers (
    consumer     TEXT NOT NULL,
    type         TEXT NOT NULL,
    position     INTEGER NOT NULL,
    head_seq     INTEGER NULL,
    deliveries   INTEGER NOT NULL DEFAULT 0,
    retry_at     INTEGER NOT NULL DEFAULT 0,
    lease_owner  TEXT NULL,
    lease_until  INTEGER NOT NULL DEFAULT 0,
    turn_started INTEGER NOT NULL DEFAULT 0,
    waiter       TEXT NULL,
    waiter_at    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    active_at    INTEGER NOT NULL,
    PRIMARY KEY (consumer, type)
  ) STRICT;

  CREATE TABLE bus_dead_letters (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer   TEXT NOT NULL,
    type       TEXT NOT NULL,
    event_seq  INTEGER NOT NULL,
    event      TEXT NOT NULL,
    error      TEXT NOT NULL,
    deliveries INTEGER NOT NULL,
    failed_at  INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX bus_dead_letters_consumer ON bus_dead_letters (consumer, seq);
  CREATE INDEX bus_dead_letters_failed_at ON bus_dead_letters (failed_at);
  `,
  `
  ALTER TABLE bus_events ADD COLUMN target TEXT NULL;
  ALTER TABLE bus_events ADD COLUMN replay_of INTEGER NULL;
  `,
];

// ---------------------------------------------------------------------------------------------------------------
// Durable state transitions (pure)
// ---------------------------------------------------------------------------------------------------------------

interface DurableRow {
  consumer: string;
  type: string;
  position: number;
  head_seq: number | null;
  deliveries: number;
  retry_at: number;
  lease_owner: string | null;
  lease_until: number;
  turn_started: number;
  waiter: string | null;
  waiter_at: number;
  created_at: number;
  active_at: number;
}

interface EventRow {
  seq: number;
  id: string;
  type: string;
  payload: string;
  /** The dead letter this row replays (the row's id is then not the event's). */
  replay_of: number | null;
}

interface DeadLetterRow {
  consumer: string;
  event: string;
  error: string;
  deliveries: number;
  failed_at: number;
}

/** A durable as the code names it. */
interface DurableKey {
  consumer: string;
  type: EventType;
}

interface TurnTiming {
  pollIntervalMs: number;
  leaseMs: number;
  turnMs: number;
  /** A waiter that has not renewed its wish for this long is gone (crashed, stopped). */
  waiterTtlMs: number;
}

/** What a claim found. */
type Claim =
  | { kind: 'event'; seq: number; event: AivaEvent; delivery: number }
  /** Nothing to deliver until a new event is published. */
  | { kind: 'idle' }
  /** Something to deliver, but not now: backoff, another subscriber's lease or turn. Try again at `until`. */
  | { kind: 'wait'; until: number };

const holdsLease = (row: DurableRow, owner: string, now: number) =>
  row.lease_owner === owner && row.lease_until > now;

/** The row without this owner's lease and waiting wish. */
function withoutOwner(row: DurableRow, owner: string): DurableRow {
  const next = { ...row };
  if (next.lease_owner === owner) Object.assign(next, { lease_owner: null, lease_until: 0 });
  if (next.waiter === owner) Object.assign(next, { waiter: null, waiter_at: 0 });
  return next;
}

/** The row after the event at `seq` is done with (acked or dead-lettered). */
function advancedPast(row: DurableRow, seq: number, now: number): DurableRow {
  const next = { ...row, position: Math.max(row.position, seq), active_at: now };
  if (next.head_seq === null || next.head_seq <= seq)
    Object.assign(next, { head_seq: null, deliveries: 0, retry_at: 0 });
  return next;
}

type TurnDecision = { kind: 'take'; newTurn: boolean } | { kind: 'wait'; until: number; row: DurableRow };

/**
 * Whether `owner` may deliver the durable's next event now. A live lease of another subscriber means wait
 * (and say so: `waiter`). A free lease is taken unless another subscriber is waiting for it; the holder keeps
 * it across acks, but hands it over once its turn is over and another process waits.
 */
function decideTurn(row: DurableRow, owner: string, now: number, timing: TurnTiming): TurnDecision {
  const leasedByOther = row.lease_owner !== null && row.lease_owner !== owner && row.lease_until > now;
  if (leasedByOther) {
    const until = Math.min(row.lease_until, now + timing.pollIntervalMs);
    return { kind: 'wait', until, row: { ...row, waiter: owner, waiter_at: now } };
  }
  const mine = holdsLease(row, owner, now);
  const otherWaiting =
    row.waiter !== null && row.waiter !== owner && row.waiter_at > now - timing.waiterTtlMs;
  if (otherWaiting && (!mine || now - row.turn_started >= timing.turnMs)) {
    return { kind: 'wait', until: now + timing.pollIntervalMs, row: withoutOwner(row, owner) };
  }
  return { kind: 'take', newTurn: !mine };
}

/** The stored event, validated again (the file is shared: another writer may have skipped validation). */
function decodeStored(row: EventRow): { event: AivaEvent } | { error: string; envelope: AivaEvent } {
  let raw: unknown;
  try {
    raw = JSON.parse(row.payload);
    const event = validateEvent(raw);
    if (event.type !== row.type)
      throw new Error(`Event type ${event.type} does not match the log's ${row.type}`);
    if (row.replay_of === null && event.id !== row.id)
      throw new Error(`Event id ${event.id} does not match the log's ${row.id}`);
    return { event };
  } catch (error) {
    const envelope =
      raw !== null && typeof raw === 'object' && !Array.isArray(raw)
        ? (raw as AivaEvent)
        : ({
            id: row.id,
            type: row.type,
            occurredAt: '',
            source: '',
            data: row.payload,
          } as unknown as AivaEvent);
    return { error: errorMessage(error), envelope };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The store: every read and write of the file, synchronous, writes in BEGIN IMMEDIATE transactions
// ---------------------------------------------------------------------------------------------------------------

/** The outcome of a claim, with the dead letters it wrote on the way (logged once committed). */
interface ClaimResult {
  claim: Claim;
  deadLettered: DeadLetter[];
}

function createBusStore(db: SqliteDatabase, owner: string, timing: TurnTiming) {
  const stmt = {
    insertEvent: db.prepare<[string, string, string, number]>(
      `INSERT INTO bus_events (id, type, payload, published_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
    ),
    latestSeq: db.prepare<[], number | null>('SELECT max(seq) FROM bus_events').pluck(),
    typesBetween: db
      .prepare<[number, number], string>('SELECT DISTINCT type FROM bus_events WHERE seq > ? AND seq <= ?')
      .pluck(),
    // A replay (target set) is for one consumer only.
    nextEvent: db.prepare<[string, number, string], EventRow>(
      `SELECT seq, id, type, payload, replay_of FROM bus_events
       WHERE type = ? AND seq > ? AND (target IS NULL OR target = ?) ORDER BY seq LIMIT 1`,
    ),
    // The replayed dead letter is done with once its replay is delivered or dead-lettered again.
    settleReplay: db.prepare<[number, string]>(
      `DELETE FROM bus_dead_letters
       WHERE seq = (SELECT replay_of FROM bus_events WHERE seq = ? AND target = ?)`,
    ),
    // DeliverPolicy.New: the position starts at the newest event, read under the write lock of the insert.
    ensureDurable: db.prepare<[string, string, number, number]>(
      `INSERT INTO bus_consumers (consumer, type, position, created_at, active_at)
       VALUES (?, ?, (SELECT coalesce(max(seq), 0) FROM bus_events), ?, ?)
       ON CONFLICT (consumer, type) DO UPDATE SET active_at = excluded.active_at`,
    ),
    selectDurable: db.prepare<[string, string], DurableRow>(
      'SELECT * FROM bus_consumers WHERE consumer = ? AND type = ?',
    ),
    writeDurable: db.prepare<DurableRow>(
      `UPDATE bus_consumers SET position = @position, head_seq = @head_seq, deliveries = @deliveries,
         retry_at = @retry_at, lease_owner = @lease_owner, lease_until = @lease_until,
         turn_started = @turn_started, waiter = @waiter, waiter_at = @waiter_at, active_at = @active_at
       WHERE consumer = @consumer AND type = @type`,
    ),
    renewLease: db.prepare<[number, string, string, string]>(
      'UPDATE bus_consumers SET lease_until = ? WHERE consumer = ? AND type = ? AND lease_owner = ?',
    ),
    // Right-hand sides see the old row, so each CASE tests the old owner.
    releaseDurable: db.prepare<{ owner: string; consumer: string; type: string }>(
      `UPDATE bus_consumers SET
         lease_owner = CASE WHEN lease_owner = @owner THEN NULL ELSE lease_owner END,
         lease_until = CASE WHEN lease_owner = @owner THEN 0 ELSE lease_until END,
         waiter = CASE WHEN waiter = @owner THEN NULL ELSE waiter END,
         waiter_at = CASE WHEN waiter = @owner THEN 0 ELSE waiter_at END
       WHERE consumer = @consumer AND type = @type AND (lease_owner = @owner OR waiter = @owner)`,
    ),
    releaseAll: db.prepare<{ owner: string }>(
      `UPDATE bus_consumers SET
         lease_owner = CASE WHEN lease_owner = @owner THEN NULL ELSE lease_owner END,
         lease_until = CASE WHEN lease_owner = @owner THEN 0 ELSE lease_until END,
         waiter = CASE WHEN waiter = @owner THEN NULL ELSE waiter END,
         waiter_at = CASE WHEN waiter = @owner THEN 0 ELSE waiter_at END
       WHERE lease_owner = @owner OR waiter = @owner`,
    ),
    insertDeadLetter: db.prepare<[string, string, number, string, string, number, number]>(
      `INSERT INTO bus_dead_letters (consumer, type, event_seq, event, error, deliveries, failed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    deadLetters: db.prepare<[string], DeadLetterRow>(
      `SELECT consumer, event, error, deliveries, failed_at FROM bus_dead_letters
       WHERE consumer = ? ORDER BY seq`,
    ),
    removeDurables: db.prepare<[string]>('DELETE FROM bus_consumers WHERE consumer = ?'),
    removeDeadLetters: db.prepare<[string]>('DELETE FROM bus_dead_letters WHERE consumer = ?'),
    // Old events that no recently active durable of their type still needs: a durable untouched for longer
    // than the retention is considered abandoned and misses them (a JetStream consumer would too).
    pruneEvents: db.prepare<{ cutoff: number; batch: number }>(
      `DELETE FROM bus_events WHERE seq IN (
         SELECT e.seq FROM bus_events e
         WHERE e.published_at < @cutoff
           AND e.seq <= coalesce(
             (SELECT min(c.position) FROM bus_consumers c WHERE c.type = e.type AND c.active_at >= @cutoff),
             ${MAX_SEQ})
         LIMIT @batch)`,
    ),
    ping: db.prepare('SELECT 1'),
    pruneDeadLetters: db.prepare<{ cutoff: number; batch: number }>(
      `DELETE FROM bus_dead_letters WHERE seq IN (
         SELECT seq FROM bus_dead_letters WHERE failed_at < @cutoff LIMIT @batch)`,
    ),
  };

  /** Writes a durable's row back unless nothing changed (an idle look at a durable then writes nothing). */
  function writeDurable(before: DurableRow, after: DurableRow): void {
    const changed = (Object.keys(after) as Array<keyof DurableRow>).some((k) => after[k] !== before[k]);
    if (changed) stmt.writeDurable.run(after);
  }

  function readDurable(key: DurableKey, now: number): DurableRow {
    const row = stmt.selectDurable.get(key.consumer, key.type);
    if (row) return row;
    // Removed while subscribed (removeConsumer in another process): start over with new events.
    stmt.ensureDurable.run(key.consumer, key.type, now, now);
    return stmt.selectDurable.get(key.consumer, key.type) as DurableRow;
  }

  function recordDeadLetter(letter: DeadLetter, type: string, seq: number, failedAt: number): void {
    stmt.insertDeadLetter.run(
      letter.consumer,
      type,
      seq,
      JSON.stringify(letter.event),
      letter.error,
      letter.deliveries,
      failedAt,
    );
    stmt.settleReplay.run(seq, letter.consumer);
  }

  /** The next event of a durable for `owner`, claimed with a lease; dead-letters what cannot be delivered. */
  const claim = db.transaction((key: DurableKey, maxDeliver: number, now: number): ClaimResult => {
    const deadLettered: DeadLetter[] = [];
    const stored = readDurable(key, now);
    let row = stored;
    const turn = decideTurn(row, owner, now, timing);
    if (turn.kind === 'wait') {
      writeDurable(stored, turn.row);
      return { claim: { kind: 'wait', until: turn.until }, deadLettered };
    }
    for (;;) {
      const next = stmt.nextEvent.get(key.type, row.position, key.consumer);
      if (!next) {
        writeDurable(stored, withoutOwner(row, owner));
        return { claim: { kind: 'idle' }, deadLettered };
      }
      const head =
        row.head_seq === next.seq ? row : { ...row, head_seq: next.seq, deliveries: 0, retry_at: 0 };
      if (head.retry_at > now) {
        // In backoff: any subscriber may retry once it is over, so nobody holds the durable meanwhile.
        writeDurable(stored, withoutOwner(head, owner));
        return { claim: { kind: 'wait', until: head.retry_at }, deadLettered };
      }
      const giveUp = (event: AivaEvent, error: string, deliveries: number) => {
        const letter: DeadLetter = {
          consumer: key.consumer,
          event,
          error,
          deliveries,
          failedAt: new Date(now).toISOString(),
        };
        recordDeadLetter(letter, key.type, next.seq, now);
        deadLettered.push(letter);
        row = advancedPast(head, next.seq, now);
      };
      const decoded = decodeStored(next);
      if ('error' in decoded) {
        // Retrying cannot make an invalid event valid.
        giveUp(decoded.envelope, decoded.error, head.deliveries + 1);
        continue;
      }
      if (head.deliveries >= maxDeliver) {
        // Every delivery was started and the last never finished (its process died): give up now.
        giveUp(decoded.event, 'Delivery limit reached: the final delivery did not complete', head.deliveries);
        continue;
      }
      stmt.writeDurable.run({
        ...withoutOwner(head, owner),
        deliveries: head.deliveries + 1,
        lease_owner: owner,
        lease_until: now + timing.leaseMs,
        turn_started: turn.newTurn ? now : row.turn_started,
        active_at: now,
      });
      return {
        claim: { kind: 'event', seq: next.seq, event: decoded.event, delivery: head.deliveries + 1 },
        deadLettered,
      };
    }
  });

  /** The handler succeeded: move past the event, keeping the lease for the rest of the turn. */
  const ack = db.transaction((key: DurableKey, seq: number, now: number): void => {
    const row = readDurable(key, now);
    const next = advancedPast(row, seq, now);
    if (holdsLease(row, owner, now)) next.lease_until = now + timing.leaseMs;
    stmt.writeDurable.run(next);
    stmt.settleReplay.run(seq, key.consumer);
  });

  /** The handler failed and will be retried at `retryAt`, by whichever subscriber claims it then. */
  const scheduleRetry = db.transaction((key: DurableKey, seq: number, retryAt: number, now: number): void => {
    const row = readDurable(key, now);
    if (row.position >= seq || row.head_seq !== seq) return; // done with meanwhile (a lease taken over)
    stmt.writeDurable.run({ ...withoutOwner(row, owner), retry_at: retryAt, active_at: now });
  });

  /** The handler failed for the last time: record the dead letter and move on, in one transaction. */
  const deadLetter = db.transaction((key: DurableKey, seq: number, letter: DeadLetter, now: number): void => {
    const row = readDurable(key, now);
    if (row.position >= seq) return;
    recordDeadLetter(letter, key.type, seq, now);
    const next = advancedPast(row, seq, now);
    if (holdsLease(row, owner, now)) next.lease_until = now + timing.leaseMs;
    stmt.writeDurable.run(next);
  });

  const removeConsumer = db.transaction((consumer: string): void => {
    stmt.removeDurables.run(consumer);
    stmt.removeDeadLetters.run(consumer);
  });

  /** Deletes in batches, one short transaction each, until a batch comes back short. */
  function deleteInBatches(
    statement: { run(p: { cutoff: number; batch: number }): { changes: number } },
    cutoff: number,
  ) {
    const batch = db.transaction(() => statement.run({ cutoff, batch: PRUNE_BATCH }).changes);
    let total = 0;
    for (;;) {
      const removed = batch.immediate();
      total += removed;
      if (removed < PRUNE_BATCH) return total;
    }
  }

  return {
    /** Appends an event; false when its id is already in the log (a duplicate, not stored again). */
    append(event: AivaEvent, now: number): boolean {
      return stmt.insertEvent.run(event.id, event.type, JSON.stringify(event), now).changes > 0;
    },
    latestSeq: (): number => stmt.latestSeq.get() ?? 0,
    typesBetween: (after: number, upTo: number): string[] => stmt.typesBetween.all(after, upTo),
    ensureDurable(key: DurableKey, now: number): void {
      stmt.ensureDurable.run(key.consumer, key.type, now, now);
    },
    claim: (key: DurableKey, maxDeliver: number, now: number) => claim.immediate(key, maxDeliver, now),
    ack: (key: DurableKey, seq: number, now: number) => ack.immediate(key, seq, now),
    scheduleRetry: (key: DurableKey, seq: number, retryAt: number, now: number) =>
      scheduleRetry.immediate(key, seq, retryAt, now),
    deadLetter: (key: DurableKey, seq: number, letter: DeadLetter, now: number) =>
      deadLetter.immediate(key, seq, letter, now),
    /** Extends this owner's lease; false when it is not ours any more (expired and taken over). */
    renewLease(key: DurableKey, until: number): boolean {
      return stmt.renewLease.run(until, key.consumer, key.type, owner).changes > 0;
    },
    release(key: DurableKey): void {
      stmt.releaseDurable.run({ owner, consumer: key.consumer, type: key.type });
    },
    releaseAll(): void {
      stmt.releaseAll.run({ owner });
    },
    deadLetters(consumer: string): DeadLetter[] {
      return stmt.deadLetters.all(consumer).map((row) => ({
        consumer: row.consumer,
        event: JSON.parse(row.event) as AivaEvent,
        error: row.error,
        deliveries: row.deliveries,
        failedAt: new Date(row.failed_at).toISOString(),
      }));
    },
    removeConsumer: (consumer: string) => removeConsumer.immediate(consumer),
    prune(eventsBefore: number, deadLettersBefore: number): { events: number; deadLetters: number } {
      return {
        events: deleteInBatches(stmt.pruneEvents, eventsBefore),
        deadLetters: deleteInBatches(stmt.pruneDeadLetters, deadLettersBefore),
      };
    },
    ping(): void {
      stmt.ping.get();
    },
  };
}

type BusStore = ReturnType<typeof createBusStore>;

// ---------------------------------------------------------------------------------------------------------------
// Delivery in this process
// ---------------------------------------------------------------------------------------------------------------

interface ActiveHandler {
  handler: EventHandler<EventType>;
  options: Required<SubscribeOptions>;
  stopped: boolean;
  /** The delivery (handler and settlement) this handler is running right now, so stop() can wait for it. */
  inFlight: Promise<void> | null;
}

/** This process's side of one durable: its local subscribers and the loop that delivers to them. */
interface LocalDurable extends DurableKey {
  handlers: ActiveHandler[];
  /** Round-robin cursor over the local handlers of the same consumer name (competing subscribers). */
  next: number;
  /** The running delivery loop, if any. */
  worker: Promise<void> | null;
  /** Set when woken while the loop runs: it looks again before it ends. */
  rerun: boolean;
  /** Wakes the loop when a backoff, lease or turn is over. */
  timer: NodeJS.Timeout | null;
}

/** A unique id for this bus instance, readable in the file: `<source>@<host>:<pid>/<random>`. */
function ownerId(source: string | undefined): string {
  return `${source ?? 'aiva'}@${hostname()}:${process.pid}/${randomUUID().slice(0, 8)}`;
}

/**
 * An event bus over an event log in a SQLite file (WAL), for running every service in its own process on one
 * machine without NATS. Same contract as the NATS and memory adapters: catalog validation on publish and on
 * receipt; deduplication by event id (for as long as the event is kept); one durable position per (consumer,
 * type), created by the first subscribe (new events only) and kept in the file across restarts;
 * at-least-once, strictly ordered delivery with one event in flight per durable, explicit ack (the position
 * moves once the handler resolved), retries with the subscription's backoff and a delivery count kept in the
 * file; dead letters after `maxDeliver` failures.
 *
 * Subscribers of one consumer name share its events, also across processes: a lease in the file (owner and
 * expiry, renewed while a handler runs) says who delivers the durable; an expired lease is taken over, so a
 * crashed process does not block it. Publishes in this process wake local subscribers at once; other
 * processes' publishes are noticed by polling `max(seq)` every `pollIntervalMs`. All SQLite calls are
 * synchronous (short transactions; `BEGIN IMMEDIATE` for writes, with the busy timeout of `configureSqlite`).
 * Event data never goes to the log, only ids and types.
 */
export function createSqliteBus(options: SqliteBusOptions): SqliteBus {
  const logger = options.logger?.child({ component: 'event-bus' });
  const pollIntervalMs = positive(options.pollIntervalMs ?? 50, 'pollIntervalMs');
  const retentionMs = positive(options.retentionMs ?? 7 * DAY_MS, 'retentionMs');
  const deadLetterRetentionMs = positive(
    options.deadLetterRetentionMs ?? 30 * DAY_MS,
    'deadLetterRetentionMs',
  );
  const leaseMs = positive(options.leaseMs ?? 30_000, 'leaseMs');
  const pruneIntervalMs = positive(options.pruneIntervalMs ?? 10 * 60 * 1000, 'pruneIntervalMs');
  const timing: TurnTiming = {
    pollIntervalMs,
    leaseMs,
    turnMs: Math.max(0, options.turnMs ?? 500),
    waiterTtlMs: 4 * pollIntervalMs + 100,
  };
  const owner = ownerId(options.source);
  const db = openMigratedSqlite(options.file, {
    component: SQLITE_BUS_SCHEMA_COMPONENT,
    migrations: MIGRATIONS,
    label: 'event bus',
  });
  const store: BusStore = createBusStore(db, owner, timing);

  const durables = new Map<string, LocalDurable>();
  let admin: ReturnType<typeof createSqliteBusAdmin> | null = null;
  let lastSeenSeq = store.latestSeq();
  let lastPrune = 0;
  let poller: NodeJS.Timeout | null = null;
  let closing = false;
  let closed = false;
  let closeDone: Promise<void> | null = null;

  const durableKey = (consumer: string, type: string) => `${consumer}\u0000${type}`;

  function assertOpen(): void {
    if (closing || closed) throw new Error('The event bus is closed');
  }

  /** The next active local handler of a durable (round robin), or undefined when nobody here subscribes. */
  function pickHandler(durable: LocalDurable): ActiveHandler | undefined {
    durable.handlers = durable.handlers.filter((h) => !h.stopped);
    if (durable.handlers.length === 0) return undefined;
    const handler = durable.handlers[durable.next % durable.handlers.length];
    durable.next++;
    return handler;
  }

  /** Looks at the durable again at `until` (a timer, not a loop). */
  function wakeAt(durable: LocalDurable, until: number): void {
    if (closing) return;
    if (durable.timer) clearTimeout(durable.timer);
    durable.timer = setTimeout(
      () => {
        durable.timer = null;
        kick(durable);
      },
      Math.max(0, until - Date.now()),
    );
    durable.timer.unref();
  }

  /** Renews the lease while a handler runs, so a slow handler is not taken over by another process. */
  function keepLease(durable: LocalDurable, event: AivaEvent): () => void {
    let warned = false;
    const renew = setInterval(() => {
      try {
        if (store.renewLease(durable, Date.now() + leaseMs) || warned) return;
        warned = true;
        logger?.warn(
          { consumer: durable.consumer, eventId: event.id, type: event.type },
          'event lease expired during delivery; another subscriber may deliver it too',
        );
      } catch (error) {
        logger?.warn({ consumer: durable.consumer, err: errorMessage(error) }, 'event lease renewal failed');
      }
    }, leaseMs / 3);
    renew.unref();
    return () => clearInterval(renew);
  }

  /** Records how a delivery ended. A failure to write it leaves the event to be delivered again. */
  function settle(
    durable: LocalDurable,
    active: ActiveHandler,
    claim: Extract<Claim, { kind: 'event' }>,
    failure: { error: unknown } | null,
  ): void {
    const { event, seq, delivery } = claim;
    const now = Date.now();
    try {
      if (!failure) {
        store.ack(durable, seq, now);
        return;
      }
      const { maxDeliver, backoffMs } = active.options;
      if (delivery >= maxDeliver) {
        const letter: DeadLetter = {
          consumer: durable.consumer,
          event,
          error: errorMessage(failure.error),
          deliveries: delivery,
          failedAt: new Date(now).toISOString(),
        };
        store.deadLetter(durable, seq, letter, now);
        logDeadLetter(logger, letter);
        return;
      }
      logRetry(logger, { consumer: durable.consumer, event, delivery, error: failure.error });
      store.scheduleRetry(durable, seq, now + backoffFor(backoffMs, delivery), now);
    } catch (error) {
      logger?.warn(
        { consumer: durable.consumer, eventId: event.id, err: errorMessage(error) },
        'event settlement failed; the event will be delivered again',
      );
    }
  }

  /** Runs the handler on a claimed event and records the outcome. */
  async function deliver(
    durable: LocalDurable,
    active: ActiveHandler,
    claim: Extract<Claim, { kind: 'event' }>,
  ): Promise<void> {
    const release = keepLease(durable, claim.event);
    const delivery = (async () => {
      let failure: { error: unknown } | null = null;
      try {
        // new Promise(...) also turns a synchronous throw from the handler into a failed delivery.
        await new Promise<void>((resolve) => resolve(active.handler(claim.event)));
      } catch (error) {
        failure = { error };
      } finally {
        release();
      }
      settle(durable, active, claim, failure);
    })();
    active.inFlight = delivery;
    try {
      await delivery;
    } finally {
      active.inFlight = null;
    }
  }

  /**
   * Nobody here subscribes to the durable any more: hand it back (lease, turn) and forget it; its position is
   * in the file. A stale object (a later subscribe made a fresh one) must not release the fresh one's lease.
   */
  function forget(durable: LocalDurable): void {
    if (durable.timer) clearTimeout(durable.timer);
    durable.timer = null;
    const key = durableKey(durable.consumer, durable.type);
    const current = durables.get(key);
    if (current !== undefined && current !== durable) return;
    store.release(durable);
    durables.delete(key);
  }

  /** Delivers the durable's events one at a time while someone here subscribes and there is work. */
  async function runWorker(durable: LocalDurable): Promise<void> {
    for (;;) {
      const active = pickHandler(durable);
      if (!active) {
        forget(durable);
        return;
      }
      const { claim, deadLettered } = store.claim(durable, active.options.maxDeliver, Date.now());
      for (const letter of deadLettered) logDeadLetter(logger, letter);
      if (claim.kind === 'idle') return;
      if (claim.kind === 'wait') {
        wakeAt(durable, claim.until);
        return;
      }
      await deliver(durable, active, claim);
      // A long backlog must not starve timers and I/O of this process.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Starts the delivery loop of a durable unless it is already running. Never blocks the caller. */
  function kick(durable: LocalDurable): void {
    if (closed) return;
    if (durable.worker) {
      durable.rerun = true;
      return;
    }
    if (durable.timer) {
      clearTimeout(durable.timer);
      durable.timer = null;
    }
    durable.worker = (async () => {
      // Let the publisher's call stack unwind first: handlers never run inside publish().
      await Promise.resolve();
      do {
        durable.rerun = false;
        try {
          await runWorker(durable);
        } catch (error) {
          // The file is busy beyond the busy timeout, or similar: look again a little later.
          logger?.warn(
            { consumer: durable.consumer, type: durable.type, err: errorMessage(error) },
            'event claim failed',
          );
          wakeAt(durable, Date.now() + pollIntervalMs);
        }
      } while (durable.rerun && !closing);
      durable.worker = null;
    })();
  }

  function kickType(type: string): void {
    for (const durable of durables.values()) if (durable.type === type) kick(durable);
  }

  /** Runs the retention cleanup when it is due; never fails the caller. */
  function maybePrune(now: number): void {
    if (now - lastPrune < pruneIntervalMs) return;
    lastPrune = now;
    try {
      const removed = store.prune(now - retentionMs, now - deadLetterRetentionMs);
      if (removed.events + removed.deadLetters > 0) logger?.debug(removed, 'event log pruned');
    } catch (error) {
      logger?.warn({ err: errorMessage(error) }, 'event log cleanup failed');
    }
  }

  /** The poll: wakes the local durables of the types published (by any process) since the last poll. */
  function poll(): void {
    if (closing) return;
    maybePrune(Date.now());
    if (durables.size === 0) return;
    try {
      const latest = store.latestSeq();
      if (latest <= lastSeenSeq) return;
      const types = store.typesBetween(lastSeenSeq, latest);
      lastSeenSeq = latest;
      for (const type of types) kickType(type);
    } catch (error) {
      logger?.debug({ err: errorMessage(error) }, 'event poll failed');
    }
  }

  async function publish(event: AivaEvent): Promise<void> {
    assertOpen();
    const valid = validateEvent(event);
    const now = Date.now();
    if (!store.append(valid, now)) return; // duplicate: accepted, delivered once
    kickType(valid.type);
    maybePrune(now);
  }

  async function subscribe<T extends EventType>(
    consumer: string,
    type: T,
    handler: EventHandler<T>,
    subscribeOptions?: SubscribeOptions,
  ): Promise<Subscription> {
    assertOpen();
    assertSubscribable(consumer, type);
    const resolved = resolveSubscribeOptions(subscribeOptions);
    const key = durableKey(consumer, type);
    let durable = durables.get(key);
    if (!durable) {
      durable = { consumer, type, handlers: [], next: 0, worker: null, rerun: false, timer: null };
      durables.set(key, durable);
    }
    store.ensureDurable(durable, Date.now());
    const active: ActiveHandler = {
      handler: handler as unknown as EventHandler<EventType>,
      options: resolved,
      stopped: false,
      inFlight: null,
    };
    durable.handlers.push(active);
    if (!poller) {
      poller = setInterval(poll, pollIntervalMs);
      poller.unref();
    }
    kick(durable);
    const subscribed = durable;
    return {
      async stop() {
        active.stopped = true;
        // Like unsubscribing from JetStream: a delivery in progress finishes, the position is kept.
        await active.inFlight;
        // The last local subscriber gone: let the loop hand the durable back (it releases lease and turn).
        if (!subscribed.handlers.some((h) => !h.stopped)) kick(subscribed);
      },
    };
  }

  /** Stops every local subscription, waits for in-flight handlers (they are acked), then closes the file. */
  async function shutdown(): Promise<void> {
    closing = true;
    if (poller) clearInterval(poller);
    for (const durable of durables.values()) {
      for (const h of durable.handlers) h.stopped = true;
      if (durable.timer) clearTimeout(durable.timer);
      durable.timer = null;
    }
    for (;;) {
      const running = [...durables.values()]
        .map((d) => d.worker)
        .filter((w): w is Promise<void> => w !== null);
      if (running.length === 0) break;
      await Promise.allSettled(running);
    }
    try {
      store.releaseAll();
    } catch (error) {
      logger?.warn({ err: errorMessage(error) }, 'could not release event leases; they expire on their own');
    } finally {
      closed = true;
      db.close();
    }
  }

  return {
    kind: 'sqlite',
    file: options.file,
    publish,
    subscribe,
    async deadLetters(consumer) {
      assertOpen();
      return store.deadLetters(consumer);
    },
    async removeConsumer(consumer) {
      assertOpen();
      store.removeConsumer(consumer);
    },
    admin() {
      assertOpen();
      admin ??= createSqliteBusAdmin(db, { assertOpen, wake: kickType });
      return admin;
    },
    async prune() {
      assertOpen();
      const now = Date.now();
      lastPrune = now;
      return store.prune(now - retentionMs, now - deadLetterRetentionMs);
    },
    async ping() {
      assertOpen();
      store.ping();
    },
    close() {
      closeDone ??= shutdown();
      return closeDone;
    },
  };
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a number > 0`);
  return value;
}
