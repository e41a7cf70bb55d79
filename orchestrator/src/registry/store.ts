import type { InstanceChanges, InstanceRecord, TrafficSample } from './instance.js';

/**
 * Where the registry keeps its instances: in the process (memory) or in Redis, so orchestrator replicas share
 * them and a restarted orchestrator finds them again. Every write bumps a version counter; a replica that sees
 * the version move reloads the instances. Writes to an instance that is not there report `false` and change
 * nothing (it was dropped meanwhile).
 */
export interface RegistryStore {
  readonly kind: 'memory' | 'redis';
  /** Adds an instance or replaces the one with the same id, with the SDL it serves when known. */
  put(record: InstanceRecord, sdl?: string): Promise<void>;
  /** Changes parts of an instance (and its SDL, when given). */
  update(id: string, changes: InstanceChanges, sdl?: string): Promise<boolean>;
  /** Adds one gateway report's figures to an instance's traffic totals. */
  addTraffic(id: string, sample: TrafficSample): Promise<boolean>;
  remove(id: string): Promise<boolean>;
  get(id: string): Promise<InstanceRecord | undefined>;
  list(): Promise<InstanceRecord[]>;
  /** The SDL an instance registered with (or that was fetched from it). */
  sdlOf(id: string): Promise<string | undefined>;
  /** Moves on every write. */
  version(): Promise<number>;
  /**
   * Takes or renews the lease of the replica that runs the periodic work (probes, DNS discovery, the TTL
   * sweep), for `ttlMs`. True when `owner` holds it. A store of one process always grants it.
   */
  holdLease(owner: string, ttlMs: number): Promise<boolean>;
  releaseLease(owner: string): Promise<void>;
  /** Throws when the store cannot be reached (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
