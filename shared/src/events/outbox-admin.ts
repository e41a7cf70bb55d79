// The operator's handle on an outbox's quarantine: list the rows the relay gave up on, put them back in line, or
// drop them. Each service wires it to its store in a small script (`pnpm --filter @aiva/users outbox:quarantine`).
// It works on the store directly, while the service runs: the running relay picks replayed rows up on its next
// poll (every second).
import type { OutboxStore, QuarantinedEvent } from './outbox.js';

export const OUTBOX_QUARANTINE_USAGE = `usage: outbox:quarantine <command>
  list [limit]            the quarantined rows, oldest first (id, type, attempts, error; never event data)
  replay [--all | id...]  put these rows (or all of them) back in line with a fresh attempt budget
  discard id...           delete these rows for good: their events are never published`;

/** What the command prints: one JSON document (easy to read and to pipe into jq). */
export type OutboxQuarantineResult =
  | { command: 'list'; quarantined: QuarantinedSummary[]; pending: number; total: number }
  | { command: 'replay'; replayed: number }
  | { command: 'discard'; discarded: number };

/** A quarantined row as reported to an operator: ids, type and error only (events may carry personal data). */
export interface QuarantinedSummary {
  id: string;
  type: string;
  attempts: number;
  error: string;
  quarantinedAt: string;
}

export class OutboxAdminUsageError extends Error {
  override readonly name = 'OutboxAdminUsageError';
}

function summary(row: QuarantinedEvent): QuarantinedSummary {
  return {
    id: row.event.id,
    type: row.event.type,
    attempts: row.attempts,
    error: row.error,
    quarantinedAt: row.quarantinedAt.toISOString(),
  };
}

/**
 * Runs one quarantine command (`args` without the program name) against a store's outbox. Throws an
 * OutboxAdminUsageError for a command it does not understand (`replay` needs ids or `--all`, so that a bare
 * `replay` does not put everything back by accident).
 */
export async function runOutboxQuarantineCommand(
  store: Pick<OutboxStore, 'quarantinedEvents' | 'replayQuarantined' | 'discardQuarantined' | 'outboxStats'>,
  args: readonly string[],
): Promise<OutboxQuarantineResult> {
  const [command, ...rest] = args;
  switch (command) {
    case 'list': {
      const limit = rest[0] === undefined ? 100 : Number(rest[0]);
      if (!Number.isInteger(limit) || limit < 1) throw new OutboxAdminUsageError('list: limit must be >= 1');
      const [rows, stats] = await Promise.all([store.quarantinedEvents(limit), store.outboxStats()]);
      return { command, quarantined: rows.map(summary), pending: stats.pending, total: stats.quarantined };
    }
    case 'replay': {
      if (rest.length === 0) throw new OutboxAdminUsageError('replay: name the ids, or --all');
      const all = rest.includes('--all');
      if (all && rest.length > 1) throw new OutboxAdminUsageError('replay: either --all or ids');
      return { command, replayed: await store.replayQuarantined(all ? undefined : rest) };
    }
    case 'discard': {
      if (rest.length === 0 || rest.includes('--all')) {
        throw new OutboxAdminUsageError('discard: name the ids (there is no --all)');
      }
      return { command, discarded: await store.discardQuarantined(rest) };
    }
    default:
      throw new OutboxAdminUsageError(command ? `unknown command ${command}` : 'no command');
  }
}

/**
 * The body of a service's quarantine script: opens the store, runs the command from `process.argv`, prints the
 * result as JSON, closes the store. Exit code 64 for a usage error, 1 for any other failure.
 */
export async function outboxQuarantineMain(
  openStore: () => Promise<
    Pick<OutboxStore, 'quarantinedEvents' | 'replayQuarantined' | 'discardQuarantined' | 'outboxStats'> & {
      close(): Promise<void>;
    }
  >,
  args: readonly string[] = process.argv.slice(2),
): Promise<void> {
  let store: Awaited<ReturnType<typeof openStore>> | undefined;
  try {
    store = await openStore();
    const result = await runOutboxQuarantineCommand(store, args);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } catch (error) {
    if (error instanceof OutboxAdminUsageError) {
      process.stderr.write(`${error.message}\n${OUTBOX_QUARANTINE_USAGE}\n`);
      process.exitCode = 64;
    } else {
      process.stderr.write(
        `outbox:quarantine failed: ${error instanceof Error ? error.message : String(error)}\n`,
      );
      process.exitCode = 1;
    }
  } finally {
    await store?.close().catch(() => undefined);
  }
}
