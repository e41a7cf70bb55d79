import { ConfigError, loadConfig, registryToken } from '@aiva/shared';
import { describe, expect, it } from 'vitest';
import { orchestratorEnvSchema } from '../src/config.js';
import { checkCredential } from '../src/registry/credentials.js';
import { afterProbe, afterTraffic, type EjectionPolicy } from '../src/registry/health-policy.js';
import { emptyTraffic, type InstanceRecord, initialHealth } from '../src/registry/instance.js';
import { buildRoutingTable } from '../src/registry/routing-table.js';

// The pure pieces of the registry: configuration, health policy, routing table, credentials.

const T0 = new Date('2030-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

describe('orchestrator configuration', () => {
  it('has the documented defaults', () => {
    const config = loadConfig(orchestratorEnvSchema, {});
    expect(config).toMatchObject({
      ORCHESTRATOR_PORT: 3100,
      SUPERGRAPH_MODE: 'committed',
      HEARTBEAT_INTERVAL_MS: 2000,
      INSTANCE_TTL_MS: 6000,
      PROBE_INTERVAL_MS: 2000,
      PROBE_TIMEOUT_MS: 1000,
      UNHEALTHY_THRESHOLD: 2,
      HEALTHY_THRESHOLD: 1,
      DISCOVERY_DNS: [],
      DNS_SERVERS: [],
      DNS_REFRESH_MS: 5000,
      ORCHESTRATOR_REDIS_PREFIX: 'aiva:registry:',
    });
    expect(config.REGISTRY_SECRET).toBeUndefined();
    expect(config.SUPERGRAPH_PATH).toMatch(/supergraph\.graphql$/);
    expect(config.SUPERGRAPH_CONFIG).toMatch(/supergraph\.yaml$/);
  });

  it('parses DNS discovery targets and servers', () => {
    const config = loadConfig(orchestratorEnvSchema, {
      DISCOVERY_DNS: 'users=users.aiva.internal:3001, auth=auth.aiva.internal:3002',
      DNS_SERVERS: '10.0.0.2,127.0.0.1:5353,[::1]:53',
    });
    expect(config.DISCOVERY_DNS).toEqual([
      { service: 'users', host: 'users.aiva.internal', port: 3001 },
      { service: 'auth', host: 'auth.aiva.internal', port: 3002 },
    ]);
    expect(config.DNS_SERVERS).toEqual(['10.0.0.2', '127.0.0.1:5353', '[::1]:53']);
  });

  it('names each bad variable without echoing a secret', () => {
    const attempt = () =>
      loadConfig(orchestratorEnvSchema, {
        REGISTRY_SECRET: 'short-secret',
        DISCOVERY_DNS: 'users=users.aiva.internal',
        DNS_SERVERS: 'dns.example.com',
        SUPERGRAPH_MODE: 'sometimes',
      });
    expect(attempt).toThrow(ConfigError);
    const message = (() => {
      try {
        attempt();
        return '';
      } catch (error) {
        return (error as Error).message;
      }
    })();
    for (const name of ['REGISTRY_SECRET', 'DISCOVERY_DNS', 'DNS_SERVERS', 'SUPERGRAPH_MODE']) {
      expect(message).toContain(name);
    }
    expect(message).not.toContain('short-secret');
  });
});

describe('health policy', () => {
  const thresholds = { unhealthy: 2, healthy: 1 };
  const fail = { ok: false as const, reason: 'ready answered 503' };

  it('makes a starting instance healthy after the healthy threshold, and unhealthy after consecutive failures', () => {
    const healthy = afterProbe(initialHealth(T0), { ok: true }, thresholds, at(10));
    expect(healthy).toMatchObject({ state: 'healthy', reason: null, since: at(10).toISOString() });

    const once = afterProbe(healthy, fail, thresholds, at(20));
    expect(once.state).toBe('healthy');
    const twice = afterProbe(once, fail, thresholds, at(30));
    expect(twice).toMatchObject({ state: 'unhealthy', reason: 'ready answered 503' });
    expect(afterProbe(twice, { ok: true }, thresholds, at(40)).state).toBe('healthy');
  });

  it('returns the same object when a probe changes nothing (no write)', () => {
    const healthy = afterProbe(initialHealth(T0), { ok: true }, thresholds, at(10));
    expect(afterProbe(healthy, { ok: true }, thresholds, at(20))).toBe(healthy);
  });

  it('ejects on failed responses for a doubling time, capped; a clean window resets the count', () => {
    const policy: EjectionPolicy = { baseMs: 10_000, maxMs: 30_000, minRequests: 10, errorRatio: 0.5 };
    const traffic = {
      instanceId: 'i',
      service: 's',
      connectionFailures: 0,
      timeouts: 0,
      latencySecondsSum: 0,
      breaker: 'closed' as const,
    };
    let health = afterProbe(initialHealth(T0), { ok: true }, thresholds, T0);

    const few = afterTraffic(health, { ...traffic, requests: 5, errors: 5 }, policy, T0);
    expect(few).toMatchObject({ ejected: false, probeNow: false });

    const durations: number[] = [];
    let now = T0.getTime();
    for (let i = 0; i < 3; i++) {
      const verdict = afterTraffic(health, { ...traffic, requests: 20, errors: 11 }, policy, new Date(now));
      expect(verdict.ejected).toBe(true);
      expect(verdict.health.reason).toBe('ejected: 11 of 20 requests failed');
      durations.push(Date.parse(verdict.health.ejectedUntil!) - now);
      // Probes pass during the ejection but do not bring it back; after it they do.
      expect(afterProbe(verdict.health, { ok: true }, thresholds, new Date(now + 1)).state).toBe('unhealthy');
      now = Date.parse(verdict.health.ejectedUntil!) + 1;
      health = afterProbe(verdict.health, { ok: true }, thresholds, new Date(now));
      expect(health.state).toBe('healthy');
    }
    expect(durations).toEqual([10_000, 20_000, 30_000]);

    const clean = afterTraffic(health, { ...traffic, requests: 20, errors: 1 }, policy, new Date(now));
    expect(clean.health.ejections).toBe(0);
  });

  it('asks for a probe on connection failures or timeouts instead of ejecting', () => {
    const policy: EjectionPolicy = { baseMs: 10_000, maxMs: 30_000, minRequests: 10, errorRatio: 0.5 };
    const health = afterProbe(initialHealth(T0), { ok: true }, thresholds, T0);
    const verdict = afterTraffic(
      health,
      {
        instanceId: 'i',
        service: 's',
        requests: 20,
        errors: 15,
        connectionFailures: 5,
        timeouts: 0,
        latencySecondsSum: 0,
        breaker: 'open',
      },
      policy,
      T0,
    );
    expect(verdict).toMatchObject({ probeNow: true, ejected: false });
    expect(verdict.health).toBe(health);
  });
});

describe('routing table', () => {
  function record(id: string, service: string, overrides: Partial<InstanceRecord> = {}): InstanceRecord {
    return {
      service,
      kind: 'subgraph',
      instanceId: id,
      url: `http://127.0.0.1:${4000 + id.length}`,
      graphqlPath: '/graphql',
      version: '1',
      startedAt: T0.toISOString(),
      routes: [],
      slot: null,
      pid: null,
      source: 'register',
      registeredAt: T0.toISOString(),
      sdlHash: null,
      lastHeartbeat: T0.toISOString(),
      load: null,
      health: initialHealth(T0),
      traffic: emptyTraffic(),
      ...overrides,
    };
  }

  it('has an etag of its content: the same for the same instances in any order, at any time', () => {
    const a = record('a', 'users');
    const b = record('bb', 'users');
    const first = buildRoutingTable({ supergraph: null, routable: [a, b] }, T0).table;
    const second = buildRoutingTable({ supergraph: null, routable: [b, a] }, at(5_000)).table;
    expect(second.etag).toBe(first.etag);
    expect(second.generatedAt).not.toBe(first.generatedAt);
    const third = buildRoutingTable({ supergraph: { hash: 'h', mode: 'live' }, routable: [a, b] }, T0).table;
    expect(third.etag).not.toBe(first.etag);
  });

  it('leaves gateways out and deduplicates routes; the first registered service keeps a contested prefix', () => {
    const route = { prefix: '/files', websocket: false };
    const { table, conflicts } = buildRoutingTable(
      {
        supergraph: null,
        routable: [
          record('late', 'media', { routes: [route], registeredAt: at(10).toISOString() }),
          record('u1', 'users', { routes: [route] }),
          record('u2', 'users', { routes: [route] }),
          record('gw', 'gateway', { kind: 'gateway' }),
        ],
      },
      T0,
    );
    expect(Object.keys(table.services)).toEqual(['media', 'users']);
    expect(table.routes).toEqual([{ service: 'users', prefix: '/files', websocket: false }]);
    expect(conflicts).toEqual([{ prefix: '/files', keptBy: 'users', ignored: 'media' }]);
  });
});

describe('registry credentials', () => {
  const secret = 'k'.repeat(40);
  const check = (authorization: string | undefined, service = 'users') =>
    checkCredential({ secret, authorization, service, otherServices: ['users', 'auth'] });

  it("accepts the service's own token only", () => {
    expect(check(`Bearer ${registryToken(secret, 'users')}`)).toEqual({ ok: true });
    expect(check(`Bearer ${registryToken(secret, 'auth')}`)).toMatchObject({ ok: false, status: 403 });
    expect(check(`Bearer ${registryToken('x'.repeat(40), 'users')}`)).toMatchObject({
      ok: false,
      status: 401,
    });
    expect(check(undefined)).toMatchObject({ ok: false, status: 401 });
    expect(check(registryToken(secret, 'users'))).toMatchObject({ ok: false, status: 401 });
    expect(
      checkCredential({
        secret: undefined,
        authorization: `Bearer ${registryToken(secret, 'users')}`,
        service: 'users',
        otherServices: [],
      }),
    ).toMatchObject({ ok: false, status: 401 });
  });
});
