import { randomUUID } from 'node:crypto';
import type { Logger } from '@aiva/shared';
import type { RegistrySettings } from './defaults.js';
import type { Registry } from './registry.js';
import type { RegistryStore } from './store.js';

/** Whether this orchestrator runs the periodic work (probes, DNS discovery, the TTL sweep) right now. */
export interface Lease {
  held(): boolean;
}

export interface Replica extends Lease {
  /** This replica's name in the lease. */
  readonly owner: string;
  stop(): Promise<void>;
}

/**
 * Keeps one orchestrator in step with the others on the same store: polls the store's version and reloads the
 * instances when another replica changed them, holds (or waits for) the lease of the replica that runs the
 * periodic work, and sweeps silent instances while it holds it. With the memory store there is nothing to
 * follow: the lease is always held.
 */
export function startReplica(options: {
  registry: Registry;
  store: RegistryStore;
  settings: RegistrySettings;
  logger: Logger;
}): Replica {
  const { registry, store, settings, logger } = options;
  const owner = `orchestrator-${randomUUID().slice(0, 8)}`;
  const shared = store.kind !== 'memory';
  let leader = !shared;
  let seenVersion: number | undefined;
  let storeDown = false;
  let stopped = false;
  let tick: Promise<void> | undefined;

  async function follow(): Promise<void> {
    try {
      const version = await store.version();
      if (version !== seenVersion) {
        await registry.reload();
        seenVersion = version;
      }
      const holds = await store.holdLease(owner, settings.leaseTtlMs);
      if (holds !== leader)
        logger.info({ owner }, holds ? 'this orchestrator runs the probes' : 'lease lost');
      leader = holds;
      if (storeDown) logger.info('registry store reachable again');
      storeDown = false;
    } catch (error) {
      // The lease lapses by itself; another replica takes over. Serving what is cached is the best we can do.
      if (!storeDown) logger.warn({ err: (error as Error).message }, 'registry store unreachable');
      storeDown = true;
      leader = false;
    }
  }

  const syncTimer = shared
    ? setInterval(() => {
        tick ??= follow().finally(() => {
          tick = undefined;
        });
      }, settings.syncIntervalMs)
    : undefined;
  syncTimer?.unref();

  const sweepTimer = setInterval(() => {
    if (!leader || stopped) return;
    registry.sweep().catch((error: unknown) => {
      logger.warn({ err: (error as Error).message }, 'could not sweep silent instances');
    });
  }, settings.sweepIntervalMs);
  sweepTimer.unref();

  return {
    owner,
    held: () => leader && !stopped,
    async stop() {
      stopped = true;
      clearInterval(syncTimer);
      clearInterval(sweepTimer);
      await tick;
      if (shared && leader) await store.releaseLease(owner).catch(() => undefined);
      leader = false;
    },
  };
}
