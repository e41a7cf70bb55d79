import type { RegistryStore } from './store.js';

/** A registry store that notes its own outages: when the last one ended. */
export interface OutageAwareStore extends RegistryStore {
  /** When the store answered again after failing (epoch ms); -Infinity when it never failed. */
  recoveredAt(): number;
}

/**
 * Wraps a store so the registry can tell "an instance missed its heartbeats" from "its heartbeats could not be
 * written": while Redis is down, heartbeats fail and the stored `lastHeartbeat`s age; once it answers again, the
 * sweep gives every instance a full TTL from that moment (as it does after a start) instead of dropping them all.
 */
export function outageAware(store: RegistryStore, now: () => number): OutageAwareStore {
  let failing = false;
  let recovered = Number.NEGATIVE_INFINITY;
  const watch = <T>(call: () => Promise<T>): Promise<T> =>
    call().then(
      (value) => {
        if (failing) {
          failing = false;
          recovered = now();
        }
        return value;
      },
      (error: unknown) => {
        failing = true;
        throw error;
      },
    );
  return {
    kind: store.kind,
    put: (record, sdl) => watch(() => store.put(record, sdl)),
    update: (id, changes, sdl) => watch(() => store.update(id, changes, sdl)),
    addTraffic: (id, sample) => watch(() => store.addTraffic(id, sample)),
    remove: (id) => watch(() => store.remove(id)),
    get: (id) => watch(() => store.get(id)),
    list: () => watch(() => store.list()),
    sdlOf: (id) => watch(() => store.sdlOf(id)),
    version: () => watch(() => store.version()),
    holdLease: (owner, ttlMs) => watch(() => store.holdLease(owner, ttlMs)),
    releaseLease: (owner) => watch(() => store.releaseLease(owner)),
    ping: () => watch(() => store.ping()),
    close: () => store.close(),
    recoveredAt: () => recovered,
  };
}
