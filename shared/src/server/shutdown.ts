import { type Logger, muteStdoutLogs } from '../log.js';
import { exitWithParent } from './supervised.js';

/**
 * Runs `stop` once on SIGTERM or SIGINT, then exits 0 (1 if stopping failed). A second signal, or stopping
 * for longer than `timeoutMs`, exits at once with 1. Under the orchestrator's supervisor, the supervisor going
 * away (even killed) stops the process the same way, so no service outlives it.
 */
export function onShutdownSignal(stop: () => Promise<void>, logger: Logger, timeoutMs = 10_000): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown took too long: exiting');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
  exitWithParent(() => {
    // Its stdout went with it: nothing can be logged any more (see muteStdoutLogs).
    muteStdoutLogs();
    if (!stopping) handler('SIGTERM');
  });
}

/**
 * Runs a service's start (make the app, listen). When it fails — a hard dependency missing at start, such as
 * auth's session store in Redis — one clear line is logged (`<service> cannot start: <why>`) and the process
 * exits with 1, instead of a stack trace; the supervisor starts it again.
 */
export async function startOrExit<T>(service: string, logger: Logger, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    logger.fatal({ err: reason }, `${service} cannot start: ${reason}`);
    // Lets the line reach stdout before exiting.
    await new Promise((resolve) => setTimeout(resolve, 50));
    process.exit(1);
  }
}
