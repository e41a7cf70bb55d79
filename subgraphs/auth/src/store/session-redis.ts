import {
  AivaError,
  conflict,
  createRedisConnection,
  DEFAULT_REDIS_CONNECT_TIMEOUT_MS,
  type DependencyReporter,
  type Logger,
  type RedisClient,
  RedisUnavailableError,
} from '@aiva/shared';
import { MAX_PREVIOUS_HASHES, type SessionRecord, type SessionStore } from './session.store.js';

export interface RedisSessionStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://`. May carry credentials; it is never logged. */
  url: string;
  /** Prepended to every key (default `aiva:auth:`), so services and test runs sharing a Redis do not collide. */
  keyPrefix?: string;
  logger?: Logger;
  /** Deadline of opening a connection (REDIS_CONNECT_TIMEOUT_MS; default 5000). */
  connectTimeoutMs?: number;
  /** Deadline of one command (REDIS_COMMAND_TIMEOUT_MS; default 1000). */
  commandTimeoutMs?: number;
  /**
   * How long the store waits for Redis at start before giving up (default: the connect deadline): sessions are
   * a hard dependency of auth, which does not serve without them.
   */
  startTimeoutMs?: number;
  /** Where the connection's state changes go (dependency `sessions`); default: logged once per change. */
  health?: DependencyReporter;
}

/**
 * Sessions live in Redis and Redis cannot be reached at start: auth exits with this message rather than serve
 * without them (the supervisor starts it again).
 */
export class SessionStoreUnavailableError extends Error {
  constructor(waitedMs: number, options?: { cause?: unknown }) {
    super(
      `the session store (Redis at REDIS_URL) did not answer within ${waitedMs} ms: auth cannot serve without ` +
        'its sessions; start Redis (or unset REDIS_URL for the SQLite session store)',
      options,
    );
    this.name = 'SessionStoreUnavailableError';
  }
}

/**
 * What a caller gets for a session operation while Redis does not answer: a clear, retryable error (sign-in,
 * refresh and sign-out need the store; tokens already issued keep working at the gateway).
 */
function sessionsUnavailable(cause: unknown): AivaError {
  const error = new AivaError(
    'INTERNAL_SERVER_ERROR',
    'Sessions are unavailable right now: try again shortly',
    {
      reason: 'SESSIONS_UNAVAILABLE',
    },
  );
  error.cause = cause;
  return error;
}

/** Runs a store operation, turning "Redis does not answer" into `sessionsUnavailable`. */
async function guarded<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof RedisUnavailableError) throw sessionsUnavailable(error);
    throw error;
  }
}

// Layout (all under the key prefix):
// - `session:<id>`: a hash with the record's fields; dates as epoch milliseconds, `previousHashes` as a JSON
//   array, null fields absent. It expires (PEXPIREAT) at the session's `expiresAt`, so revoked sessions stay
//   until then (reuse detection keeps working) and expired ones vanish by themselves.
// - `user-sessions:<userId>`: a set of the user's session ids, expiring with the user's last session. Ids of
//   sessions that expired are removed when the set is read.

/** Creates the session unless the id is taken, indexes it under its user, sets both expiries. */
const CREATE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('SESSION_EXISTS a session with this id already exists')
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local wanted = tonumber(ARGV[1]) - nowMs
local ttl = redis.call('PTTL', KEYS[2])
if ttl == -1 or ttl < wanted then
  redis.call('PEXPIREAT', KEYS[2], ARGV[1])
end
return 1
`;

/**
 * Compare-and-set rotation. ARGV: expected hash, next hash, now (ms), max previous hashes. Returns the updated
 * hash as a flat field/value list, or nil when the session is missing, revoked, expired or has another hash.
 */
const ROTATE_SCRIPT = `
local s = redis.call('HMGET', KEYS[1], 'tokenHash', 'revokedAt', 'expiresAt', 'previousHashes')
if not s[1] or s[1] ~= ARGV[1] or s[2] or not s[3] or tonumber(s[3]) <= tonumber(ARGV[3]) then
  return false
end
local previous = {}
if s[4] then previous = cjson.decode(s[4]) end
table.insert(previous, s[1])
local max = tonumber(ARGV[4])
while #previous > max do table.remove(previous, 1) end
redis.call('HSET', KEYS[1], 'tokenHash', ARGV[2], 'previousHashes', cjson.encode(previous), 'lastUsedAt', ARGV[3])
return redis.call('HGETALL', KEYS[1])
`;

/** ARGV: reason, now (ms). Returns 1 when revoked now, 0 when already revoked or expired, -1 when missing. */
const REVOKE_SCRIPT = `
local s = redis.call('HMGET', KEYS[1], 'tokenHash', 'revokedAt', 'expiresAt')
if not s[1] then return -1 end
if s[2] or not s[3] or tonumber(s[3]) <= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'revokedAt', ARGV[2], 'revokedReason', ARGV[1])
return 1
`;

/** The record as hash fields; null fields are left out. */
function toFields(session: SessionRecord): string[] {
  const fields: Array<[string, string | null]> = [
    ['id', session.id],
    ['userId', session.userId],
    ['tokenHash', session.tokenHash],
    ['previousHashes', JSON.stringify(session.previousHashes.slice(-MAX_PREVIOUS_HASHES))],
    ['createdAt', String(session.createdAt.getTime())],
    ['lastUsedAt', String(session.lastUsedAt.getTime())],
    ['expiresAt', String(session.expiresAt.getTime())],
    ['revokedAt', session.revokedAt === null ? null : String(session.revokedAt.getTime())],
    ['revokedReason', session.revokedReason],
    ['userAgent', session.userAgent],
    ['ip', session.ip],
  ];
  return fields.flatMap(([name, value]) => (value === null ? [] : [name, value]));
}

function parsePrevious(value: string | undefined): string[] {
  if (value === undefined) return [];
  const parsed: unknown = JSON.parse(value);
  // Lua's cjson encodes an empty table as `{}`: anything but an array is an empty list.
  return Array.isArray(parsed) ? parsed.map(String) : [];
}

function fromFields(fields: Record<string, string>): SessionRecord | null {
  if (fields.id === undefined || fields.tokenHash === undefined || fields.expiresAt === undefined)
    return null;
  const date = (value: string | undefined) => new Date(Number(value ?? 0));
  return {
    id: fields.id,
    userId: fields.userId ?? '',
    tokenHash: fields.tokenHash,
    previousHashes: parsePrevious(fields.previousHashes),
    createdAt: date(fields.createdAt),
    lastUsedAt: date(fields.lastUsedAt),
    expiresAt: date(fields.expiresAt),
    revokedAt: fields.revokedAt === undefined ? null : date(fields.revokedAt),
    revokedReason: fields.revokedReason ?? null,
    userAgent: fields.userAgent ?? null,
    ip: fields.ip ?? null,
  };
}

/** A flat `[field, value, ...]` script reply as an object. */
function pairsToObject(reply: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  return out;
}

/**
 * The Redis session adapter (node-redis v5, through `createRedisConnection`): every command has a deadline
 * (REDIS_COMMAND_TIMEOUT_MS) and fails at once while Redis is not connected; the connection is re-established in
 * the background after an outage. Sessions are a hard dependency: the store waits for Redis at start and throws
 * SessionStoreUnavailableError when it does not answer; during an outage, operations fail with
 * `reason: SESSIONS_UNAVAILABLE` and auth's `/ready` (check `sessions`) says not ready.
 */
export async function createRedisSessionStore(options: RedisSessionStoreOptions): Promise<SessionStore> {
  const prefix = options.keyPrefix ?? 'aiva:auth:';
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_REDIS_CONNECT_TIMEOUT_MS;
  const connection = createRedisConnection({
    url: options.url,
    name: 'sessions',
    ...(options.logger ? { logger: options.logger.child({ component: 'session-store' }) } : {}),
    ...(options.health ? { health: options.health } : {}),
    connectTimeoutMs,
    ...(options.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: options.commandTimeoutMs }),
  });
  const startTimeoutMs = options.startTimeoutMs ?? connectTimeoutMs;
  try {
    await connection.waitUntilUp(startTimeoutMs);
  } catch (error) {
    await connection.close();
    throw new SessionStoreUnavailableError(startTimeoutMs, { cause: error });
  }
  const run = <T>(command: (client: RedisClient) => Promise<T>) => guarded(() => connection.run(command));
  const script = (source: string) => {
    const runScript = connection.script(source);
    return (keys: string[], args: string[]) => guarded(() => runScript(keys, args));
  };
  const scripts = {
    create: script(CREATE_SCRIPT),
    rotate: script(ROTATE_SCRIPT),
    revoke: script(REVOKE_SCRIPT),
  };

  const sessionKey = (id: string) => `${prefix}session:${id}`;
  const userKey = (userId: string) => `${prefix}user-sessions:${userId}`;

  const revokeOne = async (id: string, reason: string, now: Date): Promise<number> =>
    Number(await scripts.revoke([sessionKey(id)], [reason, String(now.getTime())]));

  /** Drops ids of sessions that no longer exist (expired) from the user's set. */
  async function forget(userId: string, deadIds: string[]): Promise<void> {
    if (deadIds.length > 0) await run((client) => client.sRem(userKey(userId), deadIds));
  }

  return {
    kind: 'redis',

    async create(session) {
      const args = [String(session.expiresAt.getTime()), session.id, ...toFields(session)];
      try {
        await scripts.create([sessionKey(session.id), userKey(session.userId)], args);
      } catch (error) {
        if (error instanceof Error && error.message.includes('SESSION_EXISTS')) {
          throw conflict('A session with this id already exists', { field: 'id' });
        }
        throw error;
      }
    },

    async get(id) {
      return fromFields(await run((client) => client.hGetAll(sessionKey(id))));
    },

    async rotate(id, expectedHash, nextHash, now) {
      const reply = await scripts.rotate(
        [sessionKey(id)],
        [expectedHash, nextHash, String(now.getTime()), String(MAX_PREVIOUS_HASHES)],
      );
      return reply === null || reply === undefined ? null : fromFields(pairsToObject(reply));
    },

    async revoke(id, reason, now) {
      return (await revokeOne(id, reason, now)) === 1;
    },

    async revokeAllForUser(userId, reason, now, exceptSessionId) {
      const ids = (await run((client) => client.sMembers(userKey(userId)))).map(String);
      const targets = ids.filter((id) => id !== exceptSessionId);
      const results = await Promise.all(targets.map((id) => revokeOne(id, reason, now)));
      await forget(
        userId,
        targets.filter((_, i) => results[i] === -1),
      );
      return results.filter((r) => r === 1).length;
    },

    async listActiveForUser(userId, now) {
      const ids = (await run((client) => client.sMembers(userKey(userId)))).map(String);
      const records = await Promise.all(
        ids.map(async (id) => fromFields(await run((client) => client.hGetAll(sessionKey(id))))),
      );
      await forget(
        userId,
        ids.filter((_, i) => records[i] === null),
      );
      const nowMs = now.getTime();
      return records
        .filter(
          (s): s is SessionRecord =>
            s !== null && s.userId === userId && s.revokedAt === null && s.expiresAt.getTime() > nowMs,
        )
        .sort(
          (a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0),
        );
    },

    async ping() {
      await run((client) => client.ping());
    },

    close: () => connection.close(),
  };
}
