import {
  createEvent,
  type EventBus,
  type Heartbeat,
  type InstanceView,
  type Logger,
  type Registration,
  type RegistrationInput,
  type RoutingTable,
  registrationSchema,
  type TrafficReport,
} from '@aiva/shared';
import type { CompositionStatus, ServedSupergraph, SupergraphComposer } from './composition.js';
import { type RegistrySettings, rebuildWindowOf } from './defaults.js';
import { afterProbe, afterTraffic, type ProbeResult } from './health-policy.js';
import {
  emptyTraffic,
  type InstanceChanges,
  type InstanceRecord,
  initialHealth,
  viewOf,
} from './instance.js';
import { buildRoutingTable, type RouteConflict } from './routing-table.js';
import type { RegistryStore } from './store.js';
import { type OutageAwareStore, outageAware } from './store-outages.js';

/** A registration under an instance id another service owns. */
export class InstanceIdTakenError extends Error {
  constructor(
    readonly instanceId: string,
    readonly owner: string,
  ) {
    super(`Instance id ${instanceId} belongs to another service`);
    this.name = 'InstanceIdTakenError';
  }
}

/** An instance a discovery source (DNS) found. */
export interface DiscoveredInstance {
  instanceId: string;
  url: string;
}

/** What `applyReport` made of a gateway's report. */
export interface ReportOutcome {
  accepted: number;
  /** Instance ids the registry does not know (or of another service than reported): ignored. */
  unknown: string[];
  /** Instances with connection failures or timeouts: to probe now. */
  probe: string[];
}

export interface RegistryOptions {
  store: RegistryStore;
  composer: SupergraphComposer;
  settings: RegistrySettings;
  logger: Logger;
  /** Where `aiva.orchestrator.instance.up.v1` / `.down.v1` go (information only; failures are logged). */
  bus?: EventBus;
  /** The clock (tests). */
  now?: () => Date;
}

interface Derived {
  schema: Map<string, InstanceView['schema']>;
  routable: Set<string>;
  table: RoutingTable;
  conflicts: RouteConflict[];
}

/** A removed instance and why: for the down event. */
type Gone = Map<string, { record: InstanceRecord; reason: string }>;

/**
 * The registry core: the instances (kept in a store, cached here), their health and schema verdicts, and the
 * routing table derived from them. Every change goes through the store first (so replicas on one Redis agree),
 * then the cache, then the derived state; changes are applied one at a time. Listeners hear of every change;
 * instances that become or stop being routable are published as `aiva.orchestrator.instance.up.v1` / `.down.v1`.
 */
export class Registry {
  private readonly store: OutageAwareStore;
  private readonly composer: SupergraphComposer;
  private readonly settings: RegistrySettings;
  private readonly logger: Logger;
  private readonly bus: EventBus | undefined;
  private readonly now: () => Date;
  /** When this registry started: an instance recovered from the store gets a full TTL from here. */
  private readonly startedAt: number;
  /** Until when the table says `rebuilding` (see `startRebuilding`). */
  private rebuildingUntil = 0;
  private rebuildTimer: NodeJS.Timeout | undefined;
  private cache = new Map<string, InstanceRecord>();
  /** SDLs by `sdlHash`, for live composition. */
  private sdls = new Map<string, string>();
  private derived: Derived;
  private readonly listeners = new Set<() => void>();
  private readonly addedListeners = new Set<(id: string) => void>();
  private readonly loggedConflicts = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: RegistryOptions) {
    this.now = options.now ?? (() => new Date());
    this.store = outageAware(options.store, () => this.now().getTime());
    this.composer = options.composer;
    this.settings = options.settings;
    this.logger = options.logger;
    this.bus = options.bus;
    this.startedAt = this.now().getTime();
    this.derived = this.compute();
  }

  // -------------------------------------------------------------------------------------------------------
  // Reads

  /** The routing table: healthy subgraph instances whose schema is not a mismatch, and their routes. */
  table(): RoutingTable {
    return this.derived.table;
  }

  /** Every instance (gateways too), optionally of one service, ordered by service and id. */
  list(filter: { service?: string } = {}): InstanceView[] {
    return [...this.cache.values()]
      .filter((record) => filter.service === undefined || record.service === filter.service)
      .sort((a, b) => compare(a.service, b.service) || compare(a.instanceId, b.instanceId))
      .map((record) => this.view(record));
  }

  get(id: string): InstanceView | undefined {
    const record = this.cache.get(id);
    return record && this.view(record);
  }

  /** The record behind an instance: from the cache, else from the store (a replica may have just added it). */
  async find(id: string): Promise<InstanceRecord | undefined> {
    return this.cache.get(id) ?? (await this.store.get(id));
  }

  /** One record from the cache. */
  record(id: string): InstanceRecord | undefined {
    return this.cache.get(id);
  }

  /** Every record (for the probes, DNS discovery, metrics). */
  records(): InstanceRecord[] {
    return [...this.cache.values()];
  }

  supergraph(): ServedSupergraph | null {
    return this.composer.current();
  }

  composition(): CompositionStatus {
    return this.composer.status();
  }

  conflicts(): RouteConflict[] {
    return this.derived.conflicts;
  }

  /** Services known from registrations or the supergraph config. */
  services(): string[] {
    const names = new Set([...this.cache.values()].map((r) => r.service));
    for (const source of this.composer.status().served?.sources ?? []) names.add(source.service);
    return [...names].sort(compare);
  }

  /** Calls `listener` after every change; returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls `listener` with the id of every instance added (or moved to a new URL): the probes probe it at once. */
  onAdded(listener: (id: string) => void): () => void {
    this.addedListeners.add(listener);
    return () => this.addedListeners.delete(listener);
  }

  /**
   * Resolves with the first instance of `slot` that is registered and routable (healthy, schema not a
   * mismatch). Rejects with the signal's reason when aborted.
   */
  waitForSlot(slot: string, signal?: AbortSignal): Promise<InstanceView> {
    return new Promise((resolve, reject) => {
      const find = () =>
        [...this.cache.values()].find((r) => r.slot === slot && this.derived.routable.has(r.instanceId));
      const finish = () => {
        const record = find();
        if (!record) return false;
        cleanup();
        resolve(this.view(record));
        return true;
      };
      const onAbort = () => {
        cleanup();
        reject(signal?.reason ?? new Error('aborted'));
      };
      const unsubscribe = this.onChange(() => void finish());
      const cleanup = () => {
        unsubscribe();
        signal?.removeEventListener('abort', onAbort);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      finish();
    });
  }

  // -------------------------------------------------------------------------------------------------------
  // Writes

  /**
   * Adds an instance, or replaces the registration of the same id. A re-registration at the same URL keeps the
   * health and traffic learnt so far; at a new URL it starts over (`starting`, probed at once).
   * Throws InstanceIdTakenError when the id belongs to another service.
   */
  register(input: RegistrationInput | Registration): Promise<InstanceView> {
    const registration = registrationSchema.parse(input);
    return this.exclusive(async () => {
      const now = this.now();
      const known = await this.find(registration.instanceId);
      if (known && known.service !== registration.service) {
        throw new InstanceIdTakenError(registration.instanceId, known.service);
      }
      const sdl = registration.sdl;
      const sdlHash =
        sdl !== undefined ? this.composer.hashFor(registration.service, sdl) : (registration.sdlHash ?? null);
      const url = registration.url.replace(/\/+$/, '');
      const sameUrl = known?.url === url;
      const record: InstanceRecord = {
        service: registration.service,
        kind: registration.kind,
        instanceId: registration.instanceId,
        url,
        graphqlPath: registration.graphqlPath,
        version: registration.version,
        startedAt: registration.startedAt,
        routes: registration.routes,
        slot: registration.slot ?? null,
        pid: registration.pid ?? null,
        source: 'register',
        registeredAt: known && sameUrl ? known.registeredAt : now.toISOString(),
        sdlHash,
        lastHeartbeat: now.toISOString(),
        load: known && sameUrl ? known.load : null,
        health: known && sameUrl ? known.health : initialHealth(now),
        traffic: known && sameUrl ? known.traffic : emptyTraffic(),
      };
      await this.store.put(record, sdl);
      if (sdl !== undefined && sdlHash) this.sdls.set(sdlHash, sdl);
      this.cache.set(record.instanceId, record);
      this.logger.info(
        { instanceOf: record.service, instanceId: record.instanceId, url: record.url, slot: record.slot },
        known ? 'instance registered again' : 'instance registered',
      );
      this.derive('local');
      if (!sameUrl) this.emitAdded(record.instanceId);
      return this.view(record);
    });
  }

  /** Records a heartbeat; false for an unknown id (the instance registers again). */
  heartbeat(id: string, heartbeat: Heartbeat = {}): Promise<boolean> {
    return this.exclusive(async () => {
      const changes: InstanceChanges = { lastHeartbeat: this.now().toISOString() };
      if (heartbeat.load) changes.load = heartbeat.load;
      return this.change(id, changes);
    });
  }

  /** Removes an instance; false when it was not there. */
  deregister(id: string, reason = 'deregistered'): Promise<boolean> {
    return this.exclusive(async () => this.removeNow([id], reason).then((removed) => removed.length > 0));
  }

  /** Removes every instance of a supervisor slot at once (its process exited). Returns the removed instances. */
  removeSlot(slot: string, reason: string): Promise<InstanceView[]> {
    return this.exclusive(async () => {
      const ids = [...this.cache.values()].filter((r) => r.slot === slot).map((r) => r.instanceId);
      return this.removeNow(ids, reason);
    });
  }

  /** Applies a probe of the instance at `url` (ignored when the instance moved or left meanwhile). */
  applyProbe(id: string, url: string, result: ProbeResult): Promise<void> {
    return this.exclusive(async () => {
      const record = this.cache.get(id);
      if (!record || record.url !== url) return;
      const health = afterProbe(
        record.health,
        result,
        { unhealthy: this.settings.unhealthyThreshold, healthy: this.settings.healthyThreshold },
        this.now(),
      );
      if (health === record.health) return;
      if (health.state !== record.health.state) {
        this.logger[health.state === 'unhealthy' ? 'warn' : 'info'](
          { instanceOf: record.service, instanceId: id, reason: health.reason },
          `instance ${health.state}`,
        );
      }
      await this.change(id, { health });
    });
  }

  /**
   * Applies a gateway's report: adds the figures to each instance's totals, ejects instances whose responses
   * mostly failed, and names the instances to probe now (connection failures, timeouts).
   */
  applyReport(report: TrafficReport, windowSeconds: number): Promise<ReportOutcome> {
    return this.exclusive(async () => {
      const outcome: ReportOutcome = { accepted: 0, unknown: [], probe: [] };
      const now = this.now();
      const policy = {
        baseMs: this.settings.ejectionBaseMs,
        maxMs: this.settings.ejectionMaxMs,
        minRequests: this.settings.ejectionMinRequests,
        errorRatio: this.settings.ejectionErrorRatio,
      };
      for (const traffic of report.instances) {
        const record = await this.find(traffic.instanceId);
        if (!record || record.service !== traffic.service) {
          outcome.unknown.push(traffic.instanceId);
          continue;
        }
        const added = await this.store.addTraffic(traffic.instanceId, {
          requests: traffic.requests,
          errors: traffic.errors,
          connectionFailures: traffic.connectionFailures,
          timeouts: traffic.timeouts,
          latencySecondsSum: traffic.latencySecondsSum,
          reporter: report.reporter,
          report: {
            breaker: traffic.breaker,
            requestRate: windowSeconds > 0 ? traffic.requests / windowSeconds : 0,
            windowMs: Math.round(windowSeconds * 1000),
            at: now.getTime(),
          },
          forgetBefore: now.getTime() - this.settings.reportStaleMs,
        });
        const fresh = added ? await this.store.get(traffic.instanceId) : undefined;
        if (!fresh) {
          this.cache.delete(traffic.instanceId);
          outcome.unknown.push(traffic.instanceId);
          continue;
        }
        this.cache.set(fresh.instanceId, fresh);
        outcome.accepted++;
        const verdict = afterTraffic(fresh.health, traffic, policy, now);
        if (verdict.probeNow) outcome.probe.push(fresh.instanceId);
        if (verdict.health !== fresh.health) {
          if (verdict.ejected) {
            this.logger.warn(
              { instanceOf: fresh.service, instanceId: fresh.instanceId, reason: verdict.health.reason },
              'instance ejected on failed responses',
            );
          }
          if (await this.store.update(fresh.instanceId, { health: verdict.health })) {
            this.cache.set(fresh.instanceId, { ...fresh, health: verdict.health });
          }
        }
      }
      this.derive('local');
      return outcome;
    });
  }

  /**
   * Makes the DNS-discovered instances of `service` exactly `found`: new addresses are added (`starting`,
   * probed at once), known ones are marked as seen, the ones that left the answer are removed.
   */
  reconcileDiscovered(
    service: string,
    found: readonly DiscoveredInstance[],
    graphqlPath = '/graphql',
  ): Promise<void> {
    return this.exclusive(async () => {
      const now = this.now();
      const wanted = new Map(found.map((f) => [f.instanceId, f]));
      const gone = [...this.cache.values()]
        .filter((r) => r.source === 'dns' && r.service === service && !wanted.has(r.instanceId))
        .map((r) => r.instanceId);
      if (gone.length > 0) await this.removeNow(gone, 'left the DNS answer');
      const added: string[] = [];
      for (const instance of wanted.values()) {
        const known = this.cache.get(instance.instanceId);
        if (known) {
          if (await this.store.update(known.instanceId, { lastHeartbeat: now.toISOString() })) {
            this.cache.set(known.instanceId, { ...known, lastHeartbeat: now.toISOString() });
          }
          continue;
        }
        const record: InstanceRecord = {
          service,
          kind: 'subgraph',
          instanceId: instance.instanceId,
          url: instance.url,
          graphqlPath,
          version: 'unknown',
          startedAt: now.toISOString(),
          routes: [],
          slot: null,
          pid: null,
          source: 'dns',
          registeredAt: now.toISOString(),
          sdlHash: null,
          lastHeartbeat: now.toISOString(),
          load: null,
          health: initialHealth(now),
          traffic: emptyTraffic(),
        };
        await this.store.put(record);
        this.cache.set(record.instanceId, record);
        this.logger.info(
          { instanceOf: service, instanceId: record.instanceId, url: record.url },
          'instance found in DNS',
        );
        added.push(record.instanceId);
      }
      this.derive('local');
      for (const id of added) this.emitAdded(id);
    });
  }

  /** Records the SDL an instance serves (fetched from a DNS-discovered instance). */
  setSdl(id: string, sdl: string): Promise<void> {
    return this.exclusive(async () => {
      const record = this.cache.get(id);
      if (!record) return;
      const sdlHash = this.composer.hashFor(record.service, sdl);
      this.sdls.set(sdlHash, sdl);
      if (record.sdlHash === sdlHash) return;
      await this.change(id, { sdlHash }, sdl);
    });
  }

  /**
   * Drops instances silent for longer than the TTL ("missed heartbeats"). DNS-discovered instances leave with
   * their DNS answer instead. An instance recovered from the store gets a full TTL from this registry's start, and
   * every instance a full TTL from the end of an outage of the store.
   */
  sweep(): Promise<void> {
    return this.exclusive(async () => {
      // Asked first, so that a store answering again right now counts as recovered before anyone is judged.
      await this.store.version();
      const deadline = this.now().getTime() - this.settings.instanceTtlMs;
      // After a start, or after the store could not be reached (heartbeats could not be written), every instance
      // gets a full TTL to be heard again.
      if (this.startedAt > deadline || this.store.recoveredAt() > deadline) return;
      const silent = [...this.cache.values()].filter(
        (r) => r.source !== 'dns' && Date.parse(r.lastHeartbeat) < deadline,
      );
      const confirmed: string[] = [];
      for (const record of silent) {
        // The cache may lag behind a heartbeat another replica took: ask the store before dropping.
        const stored = await this.store.get(record.instanceId);
        if (!stored || Date.parse(stored.lastHeartbeat) < deadline) confirmed.push(record.instanceId);
        else this.cache.set(stored.instanceId, stored);
      }
      if (confirmed.length > 0) await this.removeNow(confirmed, 'missed heartbeats');
    });
  }

  /** Reloads every instance from the store (start, and when another replica changed it). */
  reload(): Promise<void> {
    return this.exclusive(async () => {
      const records = await this.store.list();
      for (const record of records) {
        if (record.sdlHash && !this.sdls.has(record.sdlHash)) {
          const sdl = await this.store.sdlOf(record.instanceId);
          if (sdl !== undefined) this.sdls.set(record.sdlHash, sdl);
        }
      }
      const before = new Set(this.cache.keys());
      this.cache = new Map(records.map((r) => [r.instanceId, r]));
      this.derive('sync');
      for (const id of this.cache.keys()) if (!before.has(id)) this.emitAdded(id);
    });
  }

  /**
   * Marks the table `rebuilding` for one TTL from the start (by which every live instance has heartbeated, heard
   * 404 and registered again) and their first probes. For a registry whose store had no instances at start.
   */
  startRebuilding(): void {
    this.rebuildingUntil = this.startedAt + rebuildWindowOf(this.settings);
    const left = this.rebuildingUntil - this.now().getTime();
    if (left <= 0) return;
    this.derive('local');
    this.logger.info(
      { forMs: left },
      'registry started empty: rebuilding from heartbeats (gateways keep the instances they knew meanwhile)',
    );
    this.rebuildTimer = setTimeout(() => {
      void this.exclusive(async () => {
        this.logger.info({ instances: this.cache.size }, 'registry rebuilt: the routing table is whole');
        this.derive('local');
      });
    }, left + 1);
    this.rebuildTimer.unref();
  }

  /** Stops its timers (the end of a rebuild). */
  stop(): void {
    clearTimeout(this.rebuildTimer);
  }

  // -------------------------------------------------------------------------------------------------------
  // Internals

  /** Writes changes to an instance through the store and the cache; false when it is gone. */
  private async change(id: string, changes: InstanceChanges, sdl?: string): Promise<boolean> {
    const updated = await this.store.update(id, changes, sdl);
    if (!updated) {
      if (this.cache.delete(id)) this.derive('local');
      return false;
    }
    const record = this.cache.get(id) ?? (await this.store.get(id));
    if (record) this.cache.set(id, { ...record, ...changes });
    this.derive('local');
    return true;
  }

  private async removeNow(ids: readonly string[], reason: string): Promise<InstanceView[]> {
    const gone: Gone = new Map();
    const views: InstanceView[] = [];
    for (const id of ids) {
      const record = this.cache.get(id) ?? (await this.store.get(id));
      const removed = await this.store.remove(id);
      this.cache.delete(id);
      if (!record || !removed) continue;
      gone.set(id, { record, reason });
      views.push(this.view(record));
      this.logger.info({ instanceOf: record.service, instanceId: id, reason }, 'instance removed');
    }
    this.derive('local', gone);
    return views;
  }

  /**
   * Recomputes composition, schema verdicts, routability and the table; publishes up/down events for changes
   * made here (a reload from the store publishes nothing: the replica that made the change did), then tells
   * the listeners.
   */
  private derive(origin: 'local' | 'sync', gone: Gone = new Map()): void {
    const before = this.derived;
    const next = this.compute();
    this.derived = next;
    this.pruneSdls();
    for (const conflict of next.conflicts) {
      const key = `${conflict.prefix} ${conflict.ignored}`;
      if (this.loggedConflicts.has(key)) continue;
      this.loggedConflicts.add(key);
      this.logger.warn(conflict, 'two services declare the same route: the first registered keeps it');
    }
    if (origin === 'local') {
      for (const id of next.routable) {
        if (!before.routable.has(id)) this.publishUp(this.cache.get(id)!);
      }
      for (const id of before.routable) {
        if (next.routable.has(id)) continue;
        const removed = gone.get(id);
        const record = removed?.record ?? this.cache.get(id);
        if (record) this.publishDown(record, removed?.reason ?? this.whyNotRoutable(record, next));
      }
    }
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (error) {
        this.logger.error({ err: error }, 'registry change listener failed');
      }
    }
  }

  private compute(): Derived {
    const records = [...this.cache.values()];
    this.composer.update(
      records.map((record) => ({ record, sdl: record.sdlHash ? this.sdls.get(record.sdlHash) : undefined })),
    );
    const schema = new Map(records.map((r) => [r.instanceId, this.composer.schemaOf(r)]));
    const routable = records.filter(
      (r) => r.health.state === 'healthy' && schema.get(r.instanceId) !== 'mismatch',
    );
    const served = this.composer.current();
    const now = this.now();
    const { table, conflicts } = buildRoutingTable(
      {
        supergraph: served && { hash: served.hash, mode: served.mode },
        routable,
        rebuilding: now.getTime() < this.rebuildingUntil,
      },
      now,
    );
    return { schema, routable: new Set(routable.map((r) => r.instanceId)), table, conflicts };
  }

  private whyNotRoutable(record: InstanceRecord, derived: Derived): string {
    if (record.health.state !== 'healthy') return record.health.reason ?? record.health.state;
    if (derived.schema.get(record.instanceId) === 'mismatch') return 'schema mismatch: serves another SDL';
    return 'not routable';
  }

  /** Keeps only the SDLs of known instances and of the served supergraph's sources. */
  private pruneSdls(): void {
    const keep = new Set<string>();
    for (const record of this.cache.values()) if (record.sdlHash) keep.add(record.sdlHash);
    for (const source of this.composer.status().served?.sources ?? []) keep.add(source.sdlHash);
    for (const hash of this.sdls.keys()) if (!keep.has(hash)) this.sdls.delete(hash);
  }

  private view(record: InstanceRecord): InstanceView {
    return viewOf(record, {
      schema: this.derived.schema.get(record.instanceId) ?? 'unknown',
      routable: this.derived.routable.has(record.instanceId),
      now: this.now().getTime(),
      reportStaleMs: this.settings.reportStaleMs,
    });
  }

  private emitAdded(id: string): void {
    for (const listener of this.addedListeners) {
      try {
        listener(id);
      } catch (error) {
        this.logger.error({ err: error }, 'registry listener failed');
      }
    }
  }

  private publishUp(record: InstanceRecord): void {
    this.logger.info({ instanceOf: record.service, instanceId: record.instanceId }, 'instance routable');
    this.publish(() =>
      createEvent('aiva.orchestrator.instance.up.v1', 'orchestrator', {
        service: record.service,
        instanceId: record.instanceId,
        url: record.url,
        at: this.now().toISOString(),
      }),
    );
  }

  private publishDown(record: InstanceRecord, reason: string): void {
    this.logger.info(
      { instanceOf: record.service, instanceId: record.instanceId, reason },
      'instance not routable',
    );
    this.publish(() =>
      createEvent('aiva.orchestrator.instance.down.v1', 'orchestrator', {
        service: record.service,
        instanceId: record.instanceId,
        url: record.url,
        reason,
        at: this.now().toISOString(),
      }),
    );
  }

  /** Publishes without waiting: the bus is information only and must never hold up or break the registry. */
  private publish(build: () => Parameters<EventBus['publish']>[0]): void {
    const bus = this.bus;
    if (!bus) return;
    try {
      bus.publish(build()).catch((error: unknown) => {
        this.logger.warn({ err: (error as Error).message }, 'could not publish an instance event');
      });
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'could not publish an instance event');
    }
  }

  /** Runs `task` after every earlier one (changes are applied one at a time). */
  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
