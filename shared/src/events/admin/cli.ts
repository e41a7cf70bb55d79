// `pnpm events`: the event bus seen from the operator's side (see commands.ts for the commands). Reads the same
// configuration as the services (NATS_URL, else the embedded event log of DATA_DIR / EVENTS_DB_FILE).
// Exit code 0 on success, 1 on any failure (usage, unknown dead letter, bus not reachable), with the reason on
// stderr.
import { commonEnvSchema, loadConfig } from '../../config.js';
import { errorMessage } from '../delivery.js';
import {
  EVENTS_USAGE,
  EventsUsageError,
  formatEventsResult,
  parseEventsArgs,
  runEventsCommand,
} from './commands.js';
import { type OpenedBusAdmin, openEventBusAdmin } from './open-admin.js';

/** Runs `pnpm events` with `args` (without the program name); resolves to the exit code. */
export async function eventsMain(args: readonly string[] = process.argv.slice(2)): Promise<number> {
  let opened: OpenedBusAdmin | undefined;
  const json = args.includes('--json');
  try {
    const command = parseEventsArgs(args);
    const result = await runEventsCommand(command, async () => {
      opened = await openEventBusAdmin(loadConfig(commonEnvSchema));
      return opened;
    });
    process.stdout.write(
      command.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatEventsResult(result)}\n`,
    );
    return 0;
  } catch (error) {
    const message = errorMessage(error);
    if (json) process.stdout.write(`${JSON.stringify({ error: message }, null, 2)}\n`);
    process.stderr.write(
      error instanceof EventsUsageError ? `${message}\n${EVENTS_USAGE}\n` : `pnpm events: ${message}\n`,
    );
    return 1;
  } finally {
    await opened?.close().catch(() => undefined);
  }
}

process.exitCode = await eventsMain();
