import { destination, type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger } from 'pino';

/** Field names whose values never reach a log line, at any depth we log (top level and two levels down). */
export const REDACTED_FIELDS = ['authorization', 'password', 'token', 'secret'] as const;

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const field of REDACTED_FIELDS) {
    for (const variant of [field, field.toUpperCase(), field[0]!.toUpperCase() + field.slice(1)]) {
      paths.push(variant, `*.${variant}`, `*.*.${variant}`);
    }
  }
  // Names that contain a secret-ish word: common shapes seen in requests and configs.
  paths.push(
    'req.headers.authorization',
    'req.headers.cookie',
    '*.accessToken',
    '*.refreshToken',
    '*.newPassword',
    '*.currentPassword',
    '*.*.accessToken',
    '*.*.refreshToken',
    '*.*.newPassword',
    '*.*.currentPassword',
    'accessToken',
    'refreshToken',
    'newPassword',
    'currentPassword',
    // Service credentials (configuration, OAuth client authentication and its answer).
    'SERVICE_SECRET',
    '*.SERVICE_SECRET',
    'SERVICE_CREDENTIAL',
    '*.SERVICE_CREDENTIAL',
    'credential',
    '*.credential',
    'client_secret',
    '*.client_secret',
    'access_token',
    '*.access_token',
  );
  return paths;
}

export interface CreateLoggerOptions {
  level?: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to read what was logged. */
  destination?: NodeJS.WritableStream;
}

/** The stdout streams of this process's loggers, so they can be muted when stdout is gone. */
const stdoutStreams = new Set<ReturnType<typeof destination>>();
const noop = () => true;

/** Where log lines go by default: stdout, written asynchronously (pino's own default, made reachable). */
function stdoutDestination() {
  const stream = destination({ dest: 1, sync: false });
  stdoutStreams.add(stream);
  return stream;
}

/**
 * Stops every logger of this process from writing to stdout. For a supervised process whose supervisor is gone
 * (its stdout pipe is closed): otherwise the last log lines would be flushed at exit into a broken pipe, which
 * sonic-boom retries forever, and the process would never exit.
 */
export function muteStdoutLogs(): void {
  for (const stream of stdoutStreams) {
    Object.assign(stream, { write: noop, flush: noop, flushSync: noop, end: noop });
  }
}

/** A pino logger named after the service, with secrets redacted. */
export function createLogger(name: string, options: CreateLoggerOptions = {}): Logger {
  const config: LoggerOptions = {
    name,
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: { paths: redactPaths(), censor: '[redacted]' },
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return pino(config, options.destination ?? stdoutDestination());
}

type LogMethod = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * A child logger made on its first use: fastify makes one per request (`request.log`, bound to the request id),
 * and most requests never log, so making pino's child up front was measurable in the gateway's CPU profile.
 */
export class LazyChildLogger {
  private made: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly bindings: Record<string, unknown>,
    private readonly options: Record<string, unknown> = {},
  ) {}

  private get logger(): Logger {
    this.made ??= this.parent.child(this.bindings, this.options);
    return this.made;
  }

  get level(): string {
    return this.made?.level ?? this.parent.level;
  }

  set level(level: string) {
    this.logger.level = level;
  }

  fatal(...args: unknown[]): void {
    this.log('fatal', args);
  }
  error(...args: unknown[]): void {
    this.log('error', args);
  }
  warn(...args: unknown[]): void {
    this.log('warn', args);
  }
  info(...args: unknown[]): void {
    this.log('info', args);
  }
  debug(...args: unknown[]): void {
    this.log('debug', args);
  }
  trace(...args: unknown[]): void {
    this.log('trace', args);
  }
  silent(): void {}

  child(bindings: Record<string, unknown>, options?: Record<string, unknown>): Logger {
    return this.logger.child(bindings, options);
  }

  private log(method: LogMethod, args: unknown[]): void {
    // Below the level: nothing is made, nothing is written.
    if (!this.parent.isLevelEnabled(method) && !this.made) return;
    (this.logger[method] as (...a: unknown[]) => void)(...args);
  }
}

/** fastify's `childLoggerFactory` making LazyChildLogger children. */
export function lazyChildLoggerFactory(
  logger: Logger,
  bindings: Record<string, unknown>,
  options: Record<string, unknown>,
): Logger {
  return new LazyChildLogger(logger, bindings, options) as unknown as Logger;
}
