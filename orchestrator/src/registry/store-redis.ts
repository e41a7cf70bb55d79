import { createScript, type RedisClient, type RedisScript } from '@aiva/shared';
import type { HealthRecord, InstanceChanges, InstanceRecord, TrafficTotals } from './instance.js';
import type { RegistryStore } from './store.js';

// Keys, under the prefix (`aiva:registry:` by default):
//   <prefix>instances        SET of instance ids
//   <prefix>instance:<id>    HASH: `static` (JSON: what it registered with), `sdlHash`, `lastHeartbeat`, `load`
//                            (JSON), `health` (JSON), `requests`, `errors`, `connectionFailures`, `timeouts`,
//                            `latencySecondsSum`, `reporters` (JSON), `sdl`. Expires `recordTtlMs` after its
//                            last write: a dead orchestrator's Redis does not keep ghosts forever.
//   <prefix>version          INTEGER, incremented by every write; replicas poll it
//   <prefix>lease            STRING: the replica running probes, DNS discovery and the sweep (PX lease)

/** The fields of an instance hash that make up its record (everything but the SDL). */
const RECORD_FIELDS = [
  'static',
  'sdlHash',
  'lastHeartbeat',
  'load',
  'health',
  'requests',
  'errors',
  'connectionFailures',
  'timeouts',
  'latencySecondsSum',
  'reporters',
] as const;

/** Sets fields of an instance that exists; bumps the version. KEYS: instance, version. ARGV: ttl, field, value... */
const UPDATE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('INCR', KEYS[2])
`;

/**
 * Adds one report to an instance's totals and keeps each reporter's latest figures, forgetting silent reporters.
 * KEYS: instance, version. ARGV: ttl, requests, errors, connectionFailures, timeouts, latency, reporter,
 * reporter JSON, forget-before (epoch ms).
 */
const TRAFFIC_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'requests', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'errors', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'connectionFailures', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'timeouts', ARGV[5])
redis.call('HINCRBYFLOAT', KEYS[1], 'latencySecondsSum', ARGV[6])
local raw = redis.call('HGET', KEYS[1], 'reporters')
local kept = {}
if raw and raw ~= '' then
  local forgetBefore = tonumber(ARGV[9])
  for name, report in pairs(cjson.decode(raw)) do
    if tonumber(report.at) >= forgetBefore then kept[name] = report end
  end
end
kept[ARGV[7]] = cjson.decode(ARGV[8])
redis.call('HSET', KEYS[1], 'reporters', cjson.encode(kept))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('INCR', KEYS[2])
`;

/** Takes the lease when free, renews it when held by ARGV[1]. KEYS: lease. ARGV: owner, ttl. */
const LEASE_SCRIPT = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
`;

const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

export interface RedisRegistryStoreOptions {
  client: RedisClient;
  /** Key prefix, e.g. `aiva:registry:`. */
  prefix: string;
  /** How long a record outlives its last write. */
  recordTtlMs: number;
  /** Close the client with the store (it was opened for it). */
  ownsClient?: boolean;
}

/** The registry in Redis: replicas on one Redis share instances and tables; a restarted orchestrator recovers. */
export function createRedisRegistryStore(options: RedisRegistryStoreOptions): RegistryStore {
  const { client, prefix } = options;
  const ttl = String(options.recordTtlMs);
  const keys = {
    index: `${prefix}instances`,
    version: `${prefix}version`,
    lease: `${prefix}lease`,
    instance: (id: string) => `${prefix}instance:${id}`,
  };
  const scripts: Record<'update' | 'traffic' | 'lease' | 'release', RedisScript> = {
    update: createScript(client, UPDATE_SCRIPT),
    traffic: createScript(client, TRAFFIC_SCRIPT),
    lease: createScript(client, LEASE_SCRIPT),
    release: createScript(client, RELEASE_SCRIPT),
  };

  async function read(id: string): Promise<InstanceRecord | undefined> {
    return parseRecord(await client.hmGet(keys.instance(id), [...RECORD_FIELDS]));
  }

  return {
    kind: 'redis',
    async put(record, sdl) {
      const key = keys.instance(record.instanceId);
      await client
        .multi()
        .del(key)
        .hSet(key, { ...serializeRecord(record), sdl: sdl ?? '' })
        .pExpire(key, options.recordTtlMs)
        .sAdd(keys.index, record.instanceId)
        .incr(keys.version)
        .exec();
    },
    async update(id, changes, sdl) {
      const fields = serializeChanges(changes);
      if (sdl !== undefined) fields.push('sdl', sdl);
      const version = await scripts.update([keys.instance(id), keys.version], [ttl, ...fields]);
      return Number(version) > 0;
    },
    async addTraffic(id, sample) {
      const version = await scripts.traffic(
        [keys.instance(id), keys.version],
        [
          ttl,
          String(sample.requests),
          String(sample.errors),
          String(sample.connectionFailures),
          String(sample.timeouts),
          sample.latencySecondsSum.toFixed(9),
          sample.reporter,
          JSON.stringify(sample.report),
          String(sample.forgetBefore),
        ],
      );
      return Number(version) > 0;
    },
    async remove(id) {
      const [deleted] = await client
        .multi()
        .del(keys.instance(id))
        .sRem(keys.index, id)
        .incr(keys.version)
        .exec();
      return Number(deleted) > 0;
    },
    get: read,
    async list() {
      const ids = await client.sMembers(keys.index);
      const rows = await Promise.all(ids.map((id) => client.hmGet(keys.instance(id), [...RECORD_FIELDS])));
      const records: InstanceRecord[] = [];
      const expired: string[] = [];
      rows.forEach((row, i) => {
        const record = parseRecord(row);
        if (record) records.push(record);
        else expired.push(ids[i]!);
      });
      // Records expired by their TTL leave their id behind in the index: tidy up.
      if (expired.length > 0) await client.sRem(keys.index, expired);
      return records;
    },
    async sdlOf(id) {
      const sdl = await client.hGet(keys.instance(id), 'sdl');
      return sdl ? sdl : undefined;
    },
    async version() {
      return Number((await client.get(keys.version)) ?? 0);
    },
    async holdLease(owner, ttlMs) {
      return Number(await scripts.lease([keys.lease], [owner, String(ttlMs)])) === 1;
    },
    async releaseLease(owner) {
      await scripts.release([keys.lease], [owner]);
    },
    async ping() {
      await client.ping();
    },
    async close() {
      if (!options.ownsClient || !client.isOpen) return;
      if (client.isReady) await client.close();
      else client.destroy();
    },
  };
}

type StaticPart = Omit<InstanceRecord, 'sdlHash' | 'lastHeartbeat' | 'load' | 'health' | 'traffic'>;

function serializeRecord(record: InstanceRecord): Record<string, string> {
  const { sdlHash, lastHeartbeat, load, health, traffic, ...rest } = record;
  const staticPart: StaticPart = rest;
  return {
    static: JSON.stringify(staticPart),
    sdlHash: sdlHash ?? '',
    lastHeartbeat,
    load: load ? JSON.stringify(load) : '',
    health: JSON.stringify(health),
    requests: String(traffic.requests),
    errors: String(traffic.errors),
    connectionFailures: String(traffic.connectionFailures),
    timeouts: String(traffic.timeouts),
    latencySecondsSum: String(traffic.latencySecondsSum),
    reporters: JSON.stringify(traffic.reporters),
  };
}

function serializeChanges(changes: InstanceChanges): string[] {
  const fields: string[] = [];
  if (changes.sdlHash !== undefined) fields.push('sdlHash', changes.sdlHash ?? '');
  if (changes.lastHeartbeat !== undefined) fields.push('lastHeartbeat', changes.lastHeartbeat);
  if (changes.load !== undefined) fields.push('load', changes.load ? JSON.stringify(changes.load) : '');
  if (changes.health !== undefined) fields.push('health', JSON.stringify(changes.health));
  return fields;
}

function parseRecord(row: ReadonlyArray<string | null>): InstanceRecord | undefined {
  const [
    staticJson,
    sdlHash,
    lastHeartbeat,
    load,
    health,
    requests,
    errors,
    failures,
    timeouts,
    latency,
    reporters,
  ] = row;
  if (!staticJson || !lastHeartbeat || !health) return undefined;
  try {
    const traffic: TrafficTotals = {
      requests: Number(requests ?? 0),
      errors: Number(errors ?? 0),
      connectionFailures: Number(failures ?? 0),
      timeouts: Number(timeouts ?? 0),
      latencySecondsSum: Number(latency ?? 0),
      reporters: reporters ? JSON.parse(reporters) : {},
    };
    return {
      ...(JSON.parse(staticJson) as StaticPart),
      sdlHash: sdlHash ? sdlHash : null,
      lastHeartbeat,
      load: load ? JSON.parse(load) : null,
      health: JSON.parse(health) as HealthRecord,
      traffic,
    };
  } catch {
    // A record another version wrote, or a damaged one: treated as absent (its instance registers again).
    return undefined;
  }
}
