import { createHash } from 'node:crypto';
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  createClient,
  DisconnectsClientError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
} from 'redis';
import type { Logger } from '../log.js';
import { type DependencyReporter, loggingReporter } from '../server/dependencies.js';
import type { RedisClient, RedisScript } from './redis-client.js';

/** Default deadline of one command (REDIS_COMMAND_TIMEOUT_MS). */
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 1_000;
/** Default deadline of opening a connection, TCP and handshake (REDIS_CONNECT_TIMEOUT_MS). */
export const DEFAULT_REDIS_CONNECT_TIMEOUT_MS = 5_000;
/** Longest pause between two connection attempts. */
const MAX_RECONNECT_DELAY_MS = 2_000;
/** Commands a connection holds at most (written and waiting, or to write); more fail at once. */
const MAX_PENDING_COMMANDS = 10_000;

/** Why a command was not run or got no answer: the caller decides whether to fail open. */
export class RedisUnavailableError extends Error {
  constructor(
    readonly connection: string,
    readonly reason: 'offline' | 'timeout' | 'aborted' | 'closed',
    options?: { cause?: unknown; timeoutMs?: number },
  ) {
    super(
      reason === 'timeout'
        ? `Redis (${connection}) did not answer within ${options?.timeoutMs ?? '?'} ms`
        : reason === 'aborted'
          ? `Redis (${connection}): the caller gave up`
          : `Redis (${connection}) is not connected`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'RedisUnavailableError';
  }
}

/** Socket-level error codes of a connection that broke under a command. */
const CONNECTION_LOSS_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT', 'ECONNABORTED']);

/**
 * Whether a command failed because the connection went away (node-redis' socket and client-state errors, or a
 * socket error code), as opposed to an error reply of the server, which is the command's own failure.
 */
export function isConnectionLoss(error: unknown): boolean {
  if (!(error instanceof Error) || error instanceof RedisUnavailableError) return false;
  if (
    error instanceof SocketClosedUnexpectedlyError ||
    error instanceof ClientClosedError ||
    error instanceof ClientOfflineError ||
    error instanceof ConnectionTimeoutError ||
    error instanceof SocketTimeoutError ||
    error instanceof DisconnectsClientError
  ) {
    return true;
  }
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && CONNECTION_LOSS_CODES.has(code);
}

export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://`. May carry credentials; it is never logged. */
  url: string;
  /** What the connection serves (`cache`, `sessions`): the dependency named in logs and metrics. */
  name?: string;
  logger?: Logger;
  /** Where state changes go (default: logged through `logger`, once per change). */
  health?: DependencyReporter;
  /** Deadline of one command, in ms (default 1000). */
  commandTimeoutMs?: number;
  /** Deadline of opening a connection (TCP connect and handshake), in ms (default 5000). */
  connectTimeoutMs?: number;
}

/**
 * A Redis connection that never makes its callers wait longer than a deadline, whatever Redis does:
 * - it connects in the background and reconnects forever (backing off up to 2 s); commands while it is not
 *   connected fail at once (no offline queue);
 * - every command has a deadline (`commandTimeoutMs`); a command past it fails, and the connection — which has
 *   stopped answering (a Redis that hangs, a network that drops packets) — is replaced by a fresh one, so the
 *   next commands fail at once instead of each waiting out the deadline;
 * - a connection whose handshake does not finish within `connectTimeoutMs` (a server that accepts and never
 *   answers) is replaced too;
 * - each state change is reported once (`health`), never per command.
 */
export interface RedisConnection {
  readonly name: string;
  /** Connected and answering, as far as the last command knows. */
  isUp(): boolean;
  /**
   * Runs `command` on the connected client within the command deadline, or the caller's `signal`, whichever
   * comes first. Rejects with RedisUnavailableError when not connected, past the deadline or aborted.
   */
  run<T>(command: (client: RedisClient) => Promise<T>, signal?: AbortSignal): Promise<T>;
  /** A Lua script run by its SHA1 (EVALSHA, falling back to EVAL on NOSCRIPT), within one command deadline. */
  script(source: string): RedisScript;
  /** Resolves once connected; rejects after `timeoutMs` ("Redis did not answer within … ms"). */
  waitUntilUp(timeoutMs: number): Promise<void>;
  /** Closes the connection (pending commands get at most one command deadline). Safe to call twice. */
  close(): Promise<void>;
}

export function createRedisConnection(options: RedisConnectionOptions): RedisConnection {
  const name = options.name ?? 'redis';
  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_REDIS_CONNECT_TIMEOUT_MS;
  const health = options.health ?? loggingReporter(name, options.logger);
  let client: RedisClient | undefined;
  let up = false;
  let closed = false;
  /** Connections replaced in a row without one becoming ready in between (for the backoff). */
  let replaced = 0;
  let reopenTimer: NodeJS.Timeout | undefined;
  let handshakeTimer: NodeJS.Timeout | undefined;
  const waiters = new Set<() => void>();

  function markUp(): void {
    replaced = 0;
    up = true;
    health.up();
    for (const wake of waiters) wake();
    waiters.clear();
  }

  function markDown(error: unknown): void {
    up = false;
    health.down(error);
  }

  function open(): void {
    if (closed) return;
    const created: RedisClient = createClient({
      url: options.url,
      disableOfflineQueue: true,
      commandsQueueMaxLength: MAX_PENDING_COMMANDS,
      socket: {
        connectTimeout: connectTimeoutMs,
        reconnectStrategy: (retries: number) =>
          Math.min(100 * 2 ** Math.min(retries, 5), MAX_RECONNECT_DELAY_MS),
      },
    });
    client = created;
    // Without an 'error' listener node-redis would crash the process; errors of replaced clients are ignored.
    created.on('error', (error: unknown) => {
      if (client === created) markDown(error);
    });
    created.on('connect', () => {
      if (client !== created) return;
      // The socket is open: the handshake must end within the connect deadline (a server that accepts and
      // never answers would hold node-redis there forever).
      clearTimeout(handshakeTimer);
      handshakeTimer = setTimeout(() => {
        if (client === created && !created.isReady) {
          replace(created, new Error(`no handshake within ${connectTimeoutMs} ms`));
        }
      }, connectTimeoutMs);
      handshakeTimer.unref();
    });
    created.on('ready', () => {
      if (client !== created) return;
      clearTimeout(handshakeTimer);
      markUp();
    });
    created.connect().catch((error: unknown) => {
      if (client === created) markDown(error);
    });
  }

  /** Drops a connection that stopped answering (failing its pending commands) and opens a new one soon. */
  function replace(stale: RedisClient, error: unknown): void {
    if (client !== stale || closed) return;
    client = undefined;
    clearTimeout(handshakeTimer);
    markDown(error);
    destroyQuietly(stale);
    replaced++;
    const delay = Math.min(100 * 2 ** Math.min(replaced - 1, 5), MAX_RECONNECT_DELAY_MS);
    reopenTimer = setTimeout(open, delay);
    reopenTimer.unref();
  }

  async function run<T>(command: (client: RedisClient) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (closed) throw new RedisUnavailableError(name, 'closed');
    const current = client;
    if (!current?.isReady) {
      const error = new RedisUnavailableError(name, 'offline');
      // Reported (once per outage: the reporter logs changes only), also before a first connection ever came up.
      markDown(error);
      throw error;
    }
    if (signal?.aborted) throw new RedisUnavailableError(name, 'aborted', { cause: signal.reason });
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new RedisUnavailableError(name, 'timeout', { timeoutMs: commandTimeoutMs })),
        commandTimeoutMs,
      );
      if (signal) {
        onAbort = () => reject(new RedisUnavailableError(name, 'aborted', { cause: signal.reason }));
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    try {
      return await Promise.race([command(current), deadline]);
    } catch (error) {
      if (error instanceof RedisUnavailableError && error.reason === 'timeout') replace(current, error);
      if (isConnectionLoss(error)) {
        // The connection broke under this command (Redis killed, a reset): the same "not answering" as offline.
        const unavailable = new RedisUnavailableError(name, 'offline', { cause: error });
        markDown(unavailable);
        throw unavailable;
      }
      throw error;
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  open();

  return {
    name,
    isUp: () => up && client?.isReady === true,
    run,
    script(source) {
      const sha = createHash('sha1').update(source).digest('hex');
      return (keys, args) =>
        run(async (redis) => {
          try {
            return await redis.evalSha(sha, { keys, arguments: args });
          } catch (error) {
            if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
            return redis.eval(source, { keys, arguments: args });
          }
        });
    },
    waitUntilUp(timeoutMs) {
      if (up && client?.isReady) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`Redis did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(wake);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(reopenTimer);
      clearTimeout(handshakeTimer);
      const current = client;
      client = undefined;
      up = false;
      if (current) await closeWithin(current, commandTimeoutMs);
    },
  };
}

function destroyQuietly(redis: RedisClient): void {
  try {
    if (redis.isOpen) redis.destroy();
  } catch {
    // Already closed.
  }
}

/** Closes gracefully (pending commands finish) when connected, but never waits more than `timeoutMs`. */
export async function closeWithin(redis: RedisClient, timeoutMs: number): Promise<void> {
  if (!redis.isOpen) return;
  if (!redis.isReady) {
    destroyQuietly(redis);
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.close().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    destroyQuietly(redis);
  }
}

/** Whether an error means "Redis cannot be reached now" (not connected, no answer in time, connection lost). */
export function isRedisUnavailable(error: unknown): boolean {
  return error instanceof RedisUnavailableError || isConnectionLoss(error);
}
