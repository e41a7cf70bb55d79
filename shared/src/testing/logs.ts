import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../log.js';

/** A logger for tests whose lines are kept: to assert what was logged, and that no secret ever was. */
export interface CapturedLogs {
  logger: Logger;
  /** Each line logged so far, parsed (a live array). */
  lines: Record<string, unknown>[];
  /** Everything logged so far, as written (JSON lines), to search for a secret. */
  text(): string;
  /** Forgets what was logged so far. */
  clear(): void;
}

/** A real pino logger (with the service's redaction) at `level`, writing into memory. */
export function capturingLogger(name = 'test', level = 'debug'): CapturedLogs {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  return {
    logger: createLogger(name, { level, destination }),
    lines,
    text: () => raw.join('\n'),
    clear: () => {
      lines.length = 0;
      raw.length = 0;
    },
  };
}
