import { Breaker, type BreakerOptions, DEFAULT_BREAKER_OPTIONS } from './breaker.js';
import type { BreakerState, InstanceTraffic, RoutingTable } from './protocol.js';
import type { RoutingSource } from './routing-follower.js';

/** One instance of a service a request can go to. */
export interface Endpoint {
  /** The registry's instance id; `static:<service>` for a supergraph routing URL. */
  id: string;
  service: string;
  /** Base URL, e.g. `http://127.0.0.1:3001`. */
  url: string;
  graphqlUrl: string;
}

/** How a request to an instance ended, for its breaker and the traffic report. */
export type CallOutcome = 'success' | 'error' | 'connection' | 'timeout';

/** A request in progress on an instance: call `done` exactly once. */
export interface Lease {
  endpoint: Endpoint;
  done(outcome: CallOutcome, latencySeconds: number): void;
}

export interface ServiceRouterOptions {
  /** The orchestrator's routing table (a follower); without one only `fallback` is used. */
  routing?: RoutingSource;
  /**
   * Where each service is when the orchestrator has never been reached: the supergraph's routing URLs (or
   * SUBGRAPH_<NAME>_URL). Once a routing table arrived, only the table counts.
   */
  fallback?: Record<string, string> | (() => Record<string, string>);
  breaker?: Partial<BreakerOptions>;
  /** For tests: the random source of power-of-two-choices. */
  random?: () => number;
}

interface InstanceState {
  endpoint: Endpoint;
  breaker: Breaker;
  outstanding: number;
  requests: number;
  errors: number;
  connectionFailures: number;
  timeouts: number;
  latencySecondsSum: number;
}

/** What a failed pick means: no instance at all, or only ones the caller asked to avoid. */
export class NoInstanceError extends Error {
  constructor(readonly service: string) {
    super(`No instance of ${service} is available`);
    this.name = 'NoInstanceError';
  }
}

/** `http://host:3001/graphql` → `http://host:3001` (a routing URL's base). */
function baseOf(graphqlUrl: string): string {
  const url = new URL(graphqlUrl);
  return `${url.protocol}//${url.host}`;
}

/**
 * Picks an instance for each request to a service: power-of-two-choices on outstanding requests among the
 * instances whose breaker lets requests through (if every breaker is open, among all of them: better a try than
 * a certain failure). Keeps a breaker per instance and the traffic each instance saw since the last report, which
 * gateways send to the orchestrator as passive health signals.
 */
export class ServiceRouter {
  private readonly routing: RoutingSource | undefined;
  private readonly fallback: () => Array<[string, Endpoint[]]>;
  /** A fallback given as a function is read anew each time (tests whose ports are known late). */
  private readonly fallbackIsLive: boolean;
  private readonly breakerOptions: BreakerOptions;
  private readonly random: () => number;
  private readonly states = new Map<string, InstanceState>();
  /** Endpoints by service for the current table, rebuilt when the table changes. */
  private byService = new Map<string, InstanceState[]>();
  private tableEtag: string | undefined;

  constructor(options: ServiceRouterOptions = {}) {
    this.routing = options.routing;
    this.breakerOptions = { ...DEFAULT_BREAKER_OPTIONS, ...options.breaker };
    this.random = options.random ?? Math.random;
    const fallback = options.fallback ?? {};
    this.fallbackIsLive = typeof fallback === 'function';
    this.fallback = () =>
      Object.entries(typeof fallback === 'function' ? fallback() : fallback).map(([service, graphqlUrl]) => [
        service,
        [{ id: `static:${service}`, service, url: baseOf(graphqlUrl), graphqlUrl }],
      ]);
  }

  /** Whether routing follows an orchestrator's table (false: static URLs). */
  get followingTable(): boolean {
    return this.routing?.current() !== undefined;
  }

  /** The instances requests to `service` may go to now. */
  endpoints(service: string): Endpoint[] {
    return this.candidates(service).map((s) => s.endpoint);
  }

  /**
   * Picks an instance for one request and counts it as outstanding until `done`. `avoid`: instance ids not to
   * pick (the one a retry failed on). Throws NoInstanceError when there is none.
   */
  pick(service: string, avoid?: ReadonlySet<string>): Lease {
    const all = this.candidates(service);
    const allowed = avoid ? all.filter((s) => !avoid.has(s.endpoint.id)) : all;
    const passing = allowed.filter((s) => s.breaker.canPass());
    const pool = passing.length > 0 ? passing : allowed;
    const chosen = this.choose(pool);
    if (!chosen) throw new NoInstanceError(service);
    chosen.breaker.begin();
    chosen.outstanding++;
    let finished = false;
    return {
      endpoint: chosen.endpoint,
      done: (outcome, latencySeconds) => {
        if (finished) return;
        finished = true;
        chosen.outstanding--;
        chosen.requests++;
        chosen.latencySecondsSum += latencySeconds;
        if (outcome === 'success') {
          chosen.breaker.onSuccess();
          return;
        }
        chosen.breaker.onFailure();
        if (outcome === 'error') chosen.errors++;
        else if (outcome === 'connection') chosen.connectionFailures++;
        else chosen.timeouts++;
      },
    };
  }

  /** The breaker state of every instance currently routed to. */
  breakers(): Array<{ endpoint: Endpoint; state: BreakerState; outstanding: number }> {
    this.refresh();
    return [...this.byService.values()]
      .flat()
      .map((s) => ({ endpoint: s.endpoint, state: s.breaker.state, outstanding: s.outstanding }));
  }

  /**
   * The traffic per instance since the previous call (deltas), for the orchestrator's passive health checks.
   * Instances no longer routed to are forgotten once they have nothing in flight.
   */
  takeTraffic(): InstanceTraffic[] {
    this.refresh();
    const routed = new Set([...this.byService.values()].flat());
    const traffic: InstanceTraffic[] = [];
    for (const [id, state] of this.states) {
      if (state.requests > 0 && !id.startsWith('static:')) {
        traffic.push({
          instanceId: id,
          service: state.endpoint.service,
          requests: state.requests,
          errors: state.errors,
          connectionFailures: state.connectionFailures,
          timeouts: state.timeouts,
          latencySecondsSum: state.latencySecondsSum,
          breaker: state.breaker.state,
        });
      }
      state.requests = 0;
      state.errors = 0;
      state.connectionFailures = 0;
      state.timeouts = 0;
      state.latencySecondsSum = 0;
      if (!routed.has(state) && state.outstanding === 0) this.states.delete(id);
    }
    return traffic;
  }

  private candidates(service: string): InstanceState[] {
    this.refresh();
    return this.byService.get(service) ?? [];
  }

  /** Rebuilds the per-service lists when the table changed (cheap check: its etag). */
  private refresh(): void {
    const table = this.routing?.current();
    const etag = table?.etag ?? 'static';
    if (etag === this.tableEtag && !(etag === 'static' && this.fallbackIsLive)) return;
    this.tableEtag = etag;
    const next = new Map<string, InstanceState[]>();
    const source: Array<[string, Endpoint[]]> = table ? endpointsOf(table) : this.fallback();
    for (const [service, endpoints] of source) {
      next.set(
        service,
        endpoints.map((endpoint) => this.stateOf(endpoint)),
      );
    }
    this.byService = next;
  }

  private stateOf(endpoint: Endpoint): InstanceState {
    const known = this.states.get(endpoint.id);
    if (known && known.endpoint.graphqlUrl === endpoint.graphqlUrl) return known;
    const state: InstanceState = {
      endpoint,
      breaker: new Breaker(this.breakerOptions),
      outstanding: 0,
      requests: 0,
      errors: 0,
      connectionFailures: 0,
      timeouts: 0,
      latencySecondsSum: 0,
    };
    this.states.set(endpoint.id, state);
    return state;
  }

  /** Power of two choices: two distinct random candidates, the one with fewer outstanding requests wins. */
  private choose(pool: InstanceState[]): InstanceState | undefined {
    if (pool.length <= 1) return pool[0];
    const i = Math.floor(this.random() * pool.length);
    let j = Math.floor(this.random() * (pool.length - 1));
    if (j >= i) j++;
    const a = pool[i]!;
    const b = pool[j]!;
    return b.outstanding < a.outstanding ? b : a;
  }
}

function endpointsOf(table: RoutingTable): Array<[string, Endpoint[]]> {
  return Object.entries(table.services).map(([service, { instances }]) => [
    service,
    instances.map((i) => ({ id: i.id, service, url: i.url, graphqlUrl: i.graphqlUrl })),
  ]);
}
