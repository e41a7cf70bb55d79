import type { Server as HttpServer } from 'node:http';
import { type AccessTokenVerifier, closeRedis, connectRedis, errorMessage, type Logger } from '@aiva/shared';
import { createAdapter } from '@socket.io/redis-adapter';
import { decodeJwt } from 'jose';
import { Server, type Socket } from 'socket.io';
import type { LiveNotification } from './notification.service.js';

/** The Socket.IO path, on the service and on the gateway's public port (a declared service route). */
export const LIVE_PATH = '/notifications/live';

/** The event a connected client receives for each new notification. */
export const LIVE_EVENT = 'notification';

const roomOf = (userId: string) => `user:${userId}`;

export interface LiveChannelOptions {
  /** The service's HTTP server (fastify's `app.server`): Socket.IO answers the upgrades under LIVE_PATH. */
  httpServer: HttpServer;
  verifier: AccessTokenVerifier;
  /**
   * Spreads emits to every instance (a Socket.IO adapter, e.g. Redis pub/sub): a notification stored by one
   * instance reaches the person's sockets on all of them. Default: this instance's sockets only.
   */
  // biome-ignore lint/suspicious/noExplicitAny: Socket.IO's adapter constructor type
  adapter?: any;
  /**
   * The person's notifications created at or after `since`, oldest first (at most a page): what a client that
   * connects with `auth: { token, since }` missed, sent before the live ones.
   */
  catchUp?: (userId: string, since: Date) => Promise<LiveNotification[]>;
  logger?: Logger;
}

export interface LiveChannel {
  /** Pushes a stored notification to the person's connected clients (on every instance with an adapter). */
  push(userId: string, notification: LiveNotification): void;
  /** Clients connected to this instance. */
  readonly connections: number;
  close(): Promise<void>;
}

/** The access token of a handshake: `auth: { token }` (browsers cannot set headers on WebSockets), or the header. */
function handshakeToken(socket: Socket): string | undefined {
  const fromAuth = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
  if (typeof fromAuth === 'string' && fromAuth.length > 0) return fromAuth.replace(/^Bearer\s+/i, '');
  const header = socket.handshake.headers.authorization;
  return typeof header === 'string' ? header.replace(/^Bearer\s+/i, '') : undefined;
}

/** The `since` of a handshake (`auth: { token, since }`, an ISO-8601 time), when it is one. */
function sinceOf(socket: Socket): Date | undefined {
  const value = (socket.handshake.auth as { since?: unknown } | undefined)?.since;
  if (typeof value !== 'string' || value.length > 40) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * In-app notifications live over Socket.IO: a client connects with its access token in the handshake, is
 * refused without a valid one (`connect_error` "UNAUTHENTICATED"), joins the room of its person, and is
 * disconnected when the token expires (it reconnects with a fresh one). A client that gives `since` (the time of
 * the last notification it has, or when it went away) first gets what it missed. WebSocket transport only: the gateway
 * forwards WebSocket upgrades to any instance, and long-polling would need sticky sessions.
 */
export function createLiveChannel(options: LiveChannelOptions): LiveChannel {
  const { logger } = options;
  const io = new Server(options.httpServer, {
    path: LIVE_PATH,
    transports: ['websocket'],
    serveClient: false,
    // Origins are the gateway's business (CORS); the handshake carries no cookie and needs a token.
    cors: { origin: true },
    ...(options.adapter ? { adapter: options.adapter } : {}),
  });
  const expiries = new Map<string, NodeJS.Timeout>();

  io.use((socket, next) => {
    const token = handshakeToken(socket);
    if (!token) return next(new Error('UNAUTHENTICATED'));
    options.verifier
      .verify(token)
      .then((viewer) => {
        if (viewer.kind !== 'user') return next(new Error('FORBIDDEN'));
        socket.data.userId = viewer.userId;
        // Verified just above: its `exp` is what the verifier accepted.
        socket.data.expiresAt = decodeJwt(token).exp;
        next();
      })
      .catch((error: unknown) => {
        logger?.debug({ err: errorMessage(error) }, 'live connection refused');
        next(new Error('UNAUTHENTICATED'));
      });
  });

  io.on('connection', (socket) => {
    const userId = socket.data.userId as string;
    void socket.join(roomOf(userId));
    // Joined first, then caught up: a notification stored in between may come twice (clients keep ids), never
    // not at all.
    const since = sinceOf(socket);
    if (since && options.catchUp) {
      options
        .catchUp(userId, since)
        .then((missed) => {
          for (const notification of missed) socket.emit(LIVE_EVENT, notification);
        })
        .catch((error: unknown) => logger?.warn({ err: errorMessage(error) }, 'live catch-up failed'));
    }
    const expiresAt = socket.data.expiresAt as number | undefined;
    if (expiresAt) {
      const timer = setTimeout(() => socket.disconnect(true), Math.max(0, expiresAt * 1000 - Date.now()));
      timer.unref();
      expiries.set(socket.id, timer);
    }
    socket.on('disconnect', () => {
      clearTimeout(expiries.get(socket.id));
      expiries.delete(socket.id);
    });
  });

  return {
    push(userId, notification) {
      io.to(roomOf(userId)).emit(LIVE_EVENT, notification);
    },
    get connections() {
      return io.engine.clientsCount;
    },
    async close() {
      for (const timer of expiries.values()) clearTimeout(timer);
      expiries.clear();
      io.disconnectSockets(true);
      // The HTTP server is fastify's: closing it is fastify's job.
      io.engine.close();
    },
  };
}

/**
 * The Socket.IO Redis adapter (pub/sub over two connections), so that a push from any instance reaches the
 * person's sockets on every instance. Redis is soft: when it cannot be reached at start, live delivery is limited
 * to this instance's sockets (one warning line) rather than the service not starting.
 */
export async function redisLiveAdapter(
  url: string,
  logger: Logger,
  connectTimeoutMs: number,
): Promise<{ adapter: ReturnType<typeof createAdapter>; close(): Promise<void> } | undefined> {
  try {
    const pub = await connectRedis({ url, logger, connectTimeoutMs });
    const sub = pub.duplicate();
    sub.on('error', () => {}); // reported once per outage through `pub`'s listener
    await sub.connect();
    return {
      adapter: createAdapter(pub, sub),
      close: async () => {
        await Promise.all([closeRedis(pub), closeRedis(sub)]);
      },
    };
  } catch (error) {
    logger.warn(
      { err: errorMessage(error) },
      'redis not reachable: live notifications reach the sockets of this instance only',
    );
    return undefined;
  }
}
