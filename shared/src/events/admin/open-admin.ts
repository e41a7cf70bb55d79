import { existsSync } from 'node:fs';
import { type CommonEnv, embeddedEventsFile } from '../../config.js';
import { BusUnavailableError } from '../bus-errors.js';
import { createNatsBus } from '../nats.js';
import { createSqliteBus } from '../sqlite.js';
import type { EventBusAdmin } from './admin.js';

/** An admin opened from a configuration, with what it talks to and how to let go of it. */
export interface OpenedBusAdmin {
  admin: EventBusAdmin;
  /** The bus for messages: `nats <url without credentials>` or `sqlite <file>`. */
  where: string;
  close(): Promise<void>;
}

/** The URL without user info: `nats://user:secret@host` must not reach a terminal or a log. */
function withoutCredentials(url: string): string {
  return url.replace(/\/\/[^@/]*@/g, '//***@');
}

/**
 * Opens the admin side of the bus the services of this configuration use, chosen as they choose it
 * (`createEventBus`): NATS when `NATS_URL` is set, else the embedded SQLite event log (`EVENTS_DB_FILE`, or
 * `<DATA_DIR>/events.sqlite`). Throws when NATS does not answer within `NATS_CONNECT_TIMEOUT_MS`, or when the
 * event log file does not exist (no service has run with this configuration: nothing to look at, and the
 * command must not create an empty log somewhere else).
 */
export async function openEventBusAdmin(
  config: Pick<CommonEnv, 'NATS_URL' | 'DATA_DIR' | 'EVENTS_DB_FILE' | 'NATS_CONNECT_TIMEOUT_MS'>,
): Promise<OpenedBusAdmin> {
  if (config.NATS_URL) {
    const where = `nats ${withoutCredentials(config.NATS_URL)}`;
    const bus = await createNatsBus({
      url: config.NATS_URL,
      source: 'events-admin',
      connectTimeoutMs: config.NATS_CONNECT_TIMEOUT_MS,
      maxReconnectDelayMs: 1_000,
    });
    try {
      await bus.whenUp(config.NATS_CONNECT_TIMEOUT_MS);
    } catch (error) {
      await bus.close().catch(() => undefined);
      if (error instanceof BusUnavailableError) {
        throw new BusUnavailableError(
          `NATS at ${withoutCredentials(config.NATS_URL)} did not answer within ${config.NATS_CONNECT_TIMEOUT_MS} ms`,
        );
      }
      throw error;
    }
    return { admin: bus.admin(), where, close: () => bus.close() };
  }
  const file = embeddedEventsFile(config);
  if (!existsSync(file)) {
    throw new Error(
      `No event log at ${file}: no service has run with this DATA_DIR / EVENTS_DB_FILE yet (set NATS_URL for NATS)`,
    );
  }
  const bus = createSqliteBus({ file, source: 'events-admin' });
  return { admin: bus.admin(), where: `sqlite ${file}`, close: () => bus.close() };
}
