import type { InstanceChanges, InstanceRecord, TrafficSample } from './instance.js';
import type { RegistryStore } from './store.js';

/**
 * The registry in the orchestrator's memory (no REDIS_URL): a restarted orchestrator starts empty and is rebuilt
 * by the instances registering again when their heartbeat answers 404. Records are copied in and out, as a
 * shared store would.
 */
export function createMemoryRegistryStore(): RegistryStore {
  const instances = new Map<string, { record: InstanceRecord; sdl: string | undefined }>();
  let version = 0;

  return {
    kind: 'memory',
    async put(record, sdl) {
      instances.set(record.instanceId, { record: structuredClone(record), sdl });
      version++;
    },
    async update(id, changes: InstanceChanges, sdl) {
      const entry = instances.get(id);
      if (!entry) return false;
      entry.record = { ...entry.record, ...structuredClone(changes) };
      if (sdl !== undefined) entry.sdl = sdl;
      version++;
      return true;
    },
    async addTraffic(id, sample: TrafficSample) {
      const entry = instances.get(id);
      if (!entry) return false;
      const traffic = entry.record.traffic;
      const reporters = Object.fromEntries(
        Object.entries(traffic.reporters).filter(([, report]) => report.at >= sample.forgetBefore),
      );
      reporters[sample.reporter] = { ...sample.report };
      entry.record.traffic = {
        requests: traffic.requests + sample.requests,
        errors: traffic.errors + sample.errors,
        connectionFailures: traffic.connectionFailures + sample.connectionFailures,
        timeouts: traffic.timeouts + sample.timeouts,
        latencySecondsSum: traffic.latencySecondsSum + sample.latencySecondsSum,
        reporters,
      };
      version++;
      return true;
    },
    async remove(id) {
      const removed = instances.delete(id);
      if (removed) version++;
      return removed;
    },
    async get(id) {
      const entry = instances.get(id);
      return entry && structuredClone(entry.record);
    },
    async list() {
      return [...instances.values()].map((entry) => structuredClone(entry.record));
    },
    async sdlOf(id) {
      return instances.get(id)?.sdl;
    },
    async version() {
      return version;
    },
    async holdLease() {
      return true;
    },
    async releaseLease() {},
    async ping() {},
    async close() {
      instances.clear();
    },
  };
}
