import {
  type AdminDeadLetter,
  type ConsumerStatus,
  type EventBusAdmin,
  type ReplayResult,
  replayAll,
  type StreamStatus,
} from './admin.js';
import { renderEventCatalog } from './catalog-doc.js';

// The commands of `pnpm events`: parsed from argv, run against an EventBusAdmin, printed as tables or JSON.
// Kept apart from cli.ts (which opens the bus from the configuration) so they can be run against any admin.

export const EVENTS_USAGE = `usage: pnpm events [command] [--json]
  (no command) | status        streams, and every consumer with its lag (pending), ack pending and dead letters
  dead [consumer]              dead letters (all, or of one consumer): id, type, event id, error; never event data
  replay <id>                  deliver a dead letter again to its consumer only; it goes once delivered
  replay --all <consumer>      replay every dead letter of a consumer
  discard <id>                 delete a dead letter for good
  catalog                      the event catalog as markdown (producers, consumers, data fields)
  --json                       print one JSON document instead of tables`;

/** A command line that cannot be run as given (unknown command, missing id, ...). */
export class EventsUsageError extends Error {
  override readonly name = 'EventsUsageError';
}

/** A parsed `pnpm events` command line. */
export type EventsCommand = (
  | { command: 'status' }
  | { command: 'dead'; consumer?: string }
  | { command: 'replay'; id: string }
  | { command: 'replay-all'; consumer: string }
  | { command: 'discard'; id: string }
  | { command: 'catalog' }
  | { command: 'help' }
) & { json: boolean };

/** Parses the arguments after the program name. Throws EventsUsageError. */
export function parseEventsArgs(args: readonly string[]): EventsCommand {
  const json = args.includes('--json');
  const all = args.includes('--all');
  if (args.includes('--help') || args.includes('-h')) return { command: 'help', json };
  const unknownFlag = args.find((a) => a.startsWith('-') && !['--json', '--all'].includes(a));
  if (unknownFlag) throw new EventsUsageError(`unknown option ${unknownFlag}`);
  const [command = 'status', ...rest] = args.filter((a) => !a.startsWith('-'));
  if (all && command !== 'replay') throw new EventsUsageError('--all goes with replay only');
  const one = (what: string): string => {
    if (rest.length !== 1) throw new EventsUsageError(`${command}: name exactly one ${what}`);
    return rest[0] as string;
  };
  switch (command) {
    case 'status':
    case 'catalog':
    case 'help':
      if (rest.length > 0) throw new EventsUsageError(`${command} takes no arguments`);
      return { command, json };
    case 'dead':
      if (rest.length > 1) throw new EventsUsageError('dead: at most one consumer');
      return rest[0] === undefined ? { command, json } : { command, consumer: rest[0], json };
    case 'replay':
      return all
        ? { command: 'replay-all', consumer: one('consumer (replay --all <consumer>)'), json }
        : { command, id: one('dead letter id (or --all <consumer>)'), json };
    case 'discard':
      return { command, id: one('dead letter id'), json };
    default:
      throw new EventsUsageError(`unknown command ${command}`);
  }
}

/** A dead letter as reported: ids, type, counts and error, never the event's data (it may be personal). */
export interface DeadLetterSummary {
  id: string;
  consumer: string;
  type: string;
  eventId: string;
  source: string;
  occurredAt: string;
  deliveries: number;
  failedAt: string;
  error: string;
}

/** What a command produced, as printed with `--json`. */
export type EventsResult =
  | { command: 'status'; bus: string; streams: StreamStatus[]; consumers: ConsumerStatus[] }
  | { command: 'dead'; deadLetters: DeadLetterSummary[] }
  | { command: 'replay'; replayed: ReplayResult[] }
  | { command: 'discard'; discarded: string }
  | { command: 'catalog'; markdown: string }
  | { command: 'help'; usage: string };

function summary(letter: AdminDeadLetter): DeadLetterSummary {
  return {
    id: letter.id,
    consumer: letter.consumer,
    type: letter.type,
    eventId: String(letter.event?.id ?? ''),
    source: String(letter.event?.source ?? ''),
    occurredAt: String(letter.event?.occurredAt ?? ''),
    deliveries: letter.deliveries,
    failedAt: letter.failedAt,
    error: letter.error,
  };
}

/**
 * Runs a command. `admin` is opened only for commands that need the bus (`catalog` and `help` do not);
 * `where` describes the bus for the status header (e.g. `sqlite .data/events.sqlite`).
 */
export async function runEventsCommand(
  command: EventsCommand,
  admin: () => Promise<{ admin: EventBusAdmin; where: string }>,
): Promise<EventsResult> {
  switch (command.command) {
    case 'help':
      return { command: 'help', usage: EVENTS_USAGE };
    case 'catalog':
      return { command: 'catalog', markdown: renderEventCatalog() };
    case 'status': {
      const { admin: bus, where } = await admin();
      const [streams, consumers] = await Promise.all([bus.streams(), bus.consumers()]);
      return { command: 'status', bus: where, streams, consumers };
    }
    case 'dead': {
      const { admin: bus } = await admin();
      return { command: 'dead', deadLetters: (await bus.deadLetters(command.consumer)).map(summary) };
    }
    case 'replay': {
      const { admin: bus } = await admin();
      return { command: 'replay', replayed: [await bus.replay(command.id)] };
    }
    case 'replay-all': {
      const { admin: bus } = await admin();
      return { command: 'replay', replayed: await replayAll(bus, command.consumer) };
    }
    case 'discard': {
      const { admin: bus } = await admin();
      await bus.discard(command.id);
      return { command: 'discard', discarded: command.id };
    }
  }
}

/** A plain-text table: a header row and left-aligned columns, two spaces apart. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** The human-readable output of a command. */
export function formatEventsResult(result: EventsResult): string {
  switch (result.command) {
    case 'help':
      return result.usage;
    case 'catalog':
      return result.markdown.trimEnd();
    case 'status': {
      const streams = formatTable(
        ['STREAM', 'SUBJECTS', 'MESSAGES', 'BYTES', 'FIRST', 'LAST', 'CONSUMERS'],
        result.streams.map((s) => [
          s.name,
          s.subjects.join(','),
          String(s.messages),
          s.bytes === null ? '-' : String(s.bytes),
          String(s.firstSeq),
          String(s.lastSeq),
          String(s.consumers),
        ]),
      );
      const consumers =
        result.consumers.length === 0
          ? 'No consumers yet (a consumer appears with its first subscribe).'
          : formatTable(
              ['CONSUMER', 'TYPE', 'PENDING', 'ACK PENDING', 'REDELIVERED', 'DEAD', 'LAST DELIVERED'],
              result.consumers.map((c) => [
                c.consumer,
                c.type,
                String(c.pending),
                String(c.ackPending),
                String(c.redelivered),
                String(c.deadLetters),
                c.lastDelivered ?? '-',
              ]),
            );
      return `Event bus: ${result.bus}\n\n${streams}\n\n${consumers}`;
    }
    case 'dead':
      if (result.deadLetters.length === 0) return 'No dead letters.';
      return `${formatTable(
        ['ID', 'CONSUMER', 'TYPE', 'EVENT', 'DELIVERIES', 'FAILED AT', 'ERROR'],
        result.deadLetters.map((d) => [
          d.id,
          d.consumer,
          d.type,
          d.eventId,
          String(d.deliveries),
          d.failedAt,
          d.error.replace(/\s+/g, ' '),
        ]),
      )}\n\nReplay one with \`pnpm events replay <id>\`, all of a consumer with \`pnpm events replay --all <consumer>\`.`;
    case 'replay':
      if (result.replayed.length === 0) return 'No dead letters to replay.';
      return result.replayed
        .map(
          (r) =>
            `Replayed dead letter ${r.id} (${r.type} ${r.eventId}) to ${r.consumer}: it leaves the dead letters once delivered.`,
        )
        .join('\n');
    case 'discard':
      return `Discarded dead letter ${result.discarded}.`;
  }
}
