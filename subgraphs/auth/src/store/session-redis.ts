import { closeRedis, conflict, connectRedis, createScript, type Logger } from '@aiva/shared';
import { MAX_PREVIOUS_HASHES, type SessionRecord, type SessionStore } from './session.store.js';

export interface RedisSessionStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://`. May carry credentials; it is never logged. */
  url: string;
  /** Prepended to every key (default `aiva:auth:`), so services and test runs sharing a Redis do not collide. */
  keyPrefix?: string;
  logger?: Logger;
  /** How long the first connection may take before giving up (default 5000). */
  connectTimeoutMs?: number;
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

/** The Redis session adapter (node-redis v5). Commands fail fast while disconnected instead of queueing. */
export async function createRedisSessionStore(options: RedisSessionStoreOptions): Promise<SessionStore> {
  const prefix = options.keyPrefix ?? 'aiva:auth:';
  const client = await connectRedis({
    url: options.url,
    logger: options.logger?.child({ component: 'session-store' }),
    connectTimeoutMs: options.connectTimeoutMs,
  });
  const scripts = {
    create: createScript(client, CREATE_SCRIPT),
    rotate: createScript(client, ROTATE_SCRIPT),
    revoke: createScript(client, REVOKE_SCRIPT),
  };

  const sessionKey = (id: string) => `${prefix}session:${id}`;
  const userKey = (userId: string) => `${prefix}user-sessions:${userId}`;

  const revokeOne = async (id: string, reason: string, now: Date): Promise<number> =>
    Number(await scripts.revoke([sessionKey(id)], [reason, String(now.getTime())]));

  /** Drops ids of sessions that no longer exist (expired) from the user's set. */
  async function forget(userId: string, deadIds: string[]): Promise<void> {
    if (deadIds.length > 0) await client.sRem(userKey(userId), deadIds);
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
      return fromFields(await client.hGetAll(sessionKey(id)));
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
      const ids = (await client.sMembers(userKey(userId))).map(String);
      const targets = ids.filter((id) => id !== exceptSessionId);
      const results = await Promise.all(targets.map((id) => revokeOne(id, reason, now)));
      await forget(
        userId,
        targets.filter((_, i) => results[i] === -1),
      );
      return results.filter((r) => r === 1).length;
    },

    async listActiveForUser(userId, now) {
      const ids = (await client.sMembers(userKey(userId))).map(String);
      const records = await Promise.all(
        ids.map(async (id) => fromFields(await client.hGetAll(sessionKey(id)))),
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
      await client.ping();
    },

    close: () => closeRedis(client),
  };
}
