import { describe, expect, it } from 'vitest';
import type { RoutingTable } from '../src/discovery/protocol.js';
import type { RoutingSource } from '../src/discovery/routing-follower.js';
import { NoInstanceError, ServiceRouter } from '../src/discovery/service-router.js';

function tableWith(etag: string, ...ids: string[]): RoutingTable {
  return {
    etag,
    generatedAt: new Date().toISOString(),
    supergraph: null,
    routes: [],
    services: {
      users: {
        instances: ids.map((id, i) => ({
          id,
          url: `http://127.0.0.1:${4000 + i}`,
          graphqlUrl: `http://127.0.0.1:${4000 + i}/graphql`,
        })),
      },
    },
  };
}

/** A routing source whose table the test sets. */
function source(initial?: RoutingTable): RoutingSource & { set(table: RoutingTable): void } {
  let table = initial;
  return {
    current: () => table,
    onChange: () => () => {},
    set(next) {
      table = next;
    },
  };
}

describe('ServiceRouter', () => {
  it('routes to the static URLs while no routing table was received, then only to the table', () => {
    const routing = source();
    const router = new ServiceRouter({ routing, fallback: { users: 'http://127.0.0.1:3001/graphql' } });
    expect(router.followingTable).toBe(false);
    expect(router.endpoints('users')).toEqual([
      {
        id: 'static:users',
        service: 'users',
        url: 'http://127.0.0.1:3001',
        graphqlUrl: 'http://127.0.0.1:3001/graphql',
      },
    ]);
    routing.set(tableWith('a', 'users-1'));
    expect(router.followingTable).toBe(true);
    expect(router.endpoints('users').map((e) => e.id)).toEqual(['users-1']);
    expect(router.endpoints('auth')).toEqual([]);
    expect(() => router.pick('auth')).toThrow(NoInstanceError);
  });

  it('spreads requests over instances and prefers the one with fewer outstanding requests', () => {
    const router = new ServiceRouter({ routing: source(tableWith('a', 'one', 'two')) });
    const counts = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const lease = router.pick('users');
      counts.set(lease.endpoint.id, (counts.get(lease.endpoint.id) ?? 0) + 1);
      lease.done('success', 0.001);
    }
    expect(counts.get('one')).toBeGreaterThan(40);
    expect(counts.get('two')).toBeGreaterThan(40);

    // "one" is busy: with two candidates, power of two choices always compares both.
    const busy = Array.from({ length: 5 }, () => router.pick('users', new Set(['two'])));
    expect(busy.every((lease) => lease.endpoint.id === 'one')).toBe(true);
    for (let i = 0; i < 20; i++) {
      const lease = router.pick('users');
      expect(lease.endpoint.id).toBe('two');
      lease.done('success', 0.001);
    }
    for (const lease of busy) lease.done('success', 0.001);
  });

  it('avoids an instance whose breaker is open, and routes to it again once it recovered', () => {
    const router = new ServiceRouter({
      routing: source(tableWith('a', 'good', 'bad')),
      breaker: { consecutiveFailures: 2, cooldownMs: 60_000 },
    });
    for (let i = 0; i < 2; i++) router.pick('users', new Set(['good'])).done('connection', 0.001);
    expect(router.breakers().find((b) => b.endpoint.id === 'bad')?.state).toBe('open');
    for (let i = 0; i < 50; i++) {
      const lease = router.pick('users');
      expect(lease.endpoint.id).toBe('good');
      lease.done('success', 0.001);
    }
  });

  it('tries an instance with an open breaker when every breaker is open', () => {
    const router = new ServiceRouter({
      routing: source(tableWith('a', 'only')),
      breaker: { consecutiveFailures: 1, cooldownMs: 60_000 },
    });
    router.pick('users').done('connection', 0.001);
    expect(router.pick('users').endpoint.id).toBe('only');
  });

  it('reports the traffic of each instance since the last report, and forgets instances that left', () => {
    const routing = source(tableWith('a', 'one'));
    const router = new ServiceRouter({ routing });
    router.pick('users').done('success', 0.5);
    router.pick('users').done('error', 0.25);
    router.pick('users').done('connection', 0.125);
    router.pick('users').done('timeout', 1);
    expect(router.takeTraffic()).toEqual([
      {
        instanceId: 'one',
        service: 'users',
        requests: 4,
        errors: 1,
        connectionFailures: 1,
        timeouts: 1,
        latencySecondsSum: 1.875,
        breaker: 'closed',
      },
    ]);
    expect(router.takeTraffic()).toEqual([]);
    routing.set(tableWith('b', 'two'));
    router.pick('users').done('success', 0.1);
    expect(router.takeTraffic().map((t) => t.instanceId)).toEqual(['two']);
  });
});
