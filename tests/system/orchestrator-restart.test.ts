import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registryToken } from '@aiva/shared';
import { describeInfra, graphql, waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cleanEnv, freePort, type Spawned, spawnNode } from './helpers/system.js';

// The orchestrator is not in the request path: stopped, the gateway keeps routing on its last table (and auth
// keeps reaching users); restarted, its state comes back from Redis, or without Redis is rebuilt from the
// instances' heartbeats (an unknown heartbeat answers 404 and the instance registers again). The registry runs
// alone (`orchestrator registry`) and the services as processes of their own, as under compose or Kubernetes.

const SECRET = 'a-registry-secret-for-the-restart-test-0123456789';
const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { accessToken user { id } } }`;

function suite(name: string, redisUrl: string | undefined) {
  const slug = name.replaceAll(' ', '-').toLowerCase();
  const dataDir = mkdtempSync(join(tmpdir(), 'aiva-restart-'));
  const processes: Spawned[] = [];
  let registry: Spawned;
  let env: NodeJS.ProcessEnv;
  let gatewayUrl = '';
  let orchestratorUrl = '';

  const startRegistry = () => {
    registry = spawnNode(['orchestrator/src/main.ts', 'registry'], env);
    processes.push(registry);
    return waitFor(
      async () => (await fetch(`${orchestratorUrl}/health`).catch(() => null))?.ok,
      30_000,
      'the registry to answer',
    );
  };
  const instances = async () =>
    (
      (await (await fetch(`${orchestratorUrl}/v1/instances`)).json()) as {
        instances: Array<{ service: string }>;
      }
    ).instances
      .map((i) => i.service)
      .sort();

  beforeAll(async () => {
    const ports = {
      orchestrator: await freePort(),
      gateway: await freePort(),
      users: await freePort(),
      auth: await freePort(),
      ai: await freePort(),
      media: await freePort(),
      notifications: await freePort(),
    };
    orchestratorUrl = `http://127.0.0.1:${ports.orchestrator}`;
    gatewayUrl = `http://127.0.0.1:${ports.gateway}/graphql`;
    env = cleanEnv({
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      REGISTRY_SECRET: SECRET,
      ORCHESTRATOR_PORT: String(ports.orchestrator),
      ORCHESTRATOR_URL: orchestratorUrl,
      ORCHESTRATOR_REDIS_PREFIX: `aiva-test:${randomUUID()}:`,
      // Its own auth keys on a shared Redis: sign-up budgets per address must not add up across runs.
      AUTH_REDIS_PREFIX: `aiva-test:${randomUUID()}:auth:`,
      REDIS_URL: redisUrl,
      HEARTBEAT_INTERVAL_MS: '500',
      INSTANCE_TTL_MS: '2000',
      PROBE_INTERVAL_MS: '500',
      GATEWAY_PORT: String(ports.gateway),
      USERS_PORT: String(ports.users),
      AUTH_PORT: String(ports.auth),
      AI_PORT: String(ports.ai),
      MEDIA_PORT: String(ports.media),
      NOTIFICATIONS_PORT: String(ports.notifications),
      AUTH_JWKS_URL: `http://127.0.0.1:${ports.auth}/.well-known/jwks.json`,
      RATE_LIMIT_MAX: '0',
    });
    await startRegistry();
    for (const [service, entry] of [
      ['auth', 'subgraphs/auth/src/main.ts'],
      ['users', 'subgraphs/users/src/main.ts'],
      ['ai', 'subgraphs/ai/src/main.ts'],
      ['media', 'subgraphs/media/src/main.ts'],
      ['notifications', 'subgraphs/notifications/src/main.ts'],
      ['gateway', 'gateway/src/main.ts'],
    ] as const) {
      const spawned = spawnNode([entry], { ...env, REGISTRY_TOKEN: registryToken(SECRET, service) });
      processes.push(spawned);
      // One after the other, as the orchestrator starts them (first starts share the data directory's files).
      await spawned.waitForLine(/listening/, 60_000);
    }
    try {
      await waitFor(
        async () =>
          JSON.stringify(await instances()) === '["ai","auth","gateway","media","notifications","users"]',
        90_000,
        'every service to register',
      );
    } catch (error) {
      // Which one is missing, and what it said.
      const tails = processes.map((p) => p.lines.slice(-15).join('\n')).join('\n---\n');
      throw new Error(`registered: ${JSON.stringify(await instances())}\n${tails}`, { cause: error });
    }
    await waitFor(
      async () => (await fetch(gatewayUrl.replace('/graphql', '/ready')).catch(() => null))?.ok,
      30_000,
      'the gateway to be ready',
    );
  }, 180_000);

  afterAll(async () => {
    for (const spawned of processes) spawned.child.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(`${name}: routing goes on without the orchestrator, and its state comes back when it restarts`, async () => {
    registry.child.kill('SIGKILL');
    await registry.exited;
    for (let i = 0; i < 5; i++) {
      const signedUp = await graphql<{ signUp: { user: { id: string } } }>(gatewayUrl, SIGN_UP, {
        input: {
          email: `${slug}-${i}@example.test`,
          password: 'a long password',
          username: `${slug}_${i}`,
          firstName: 'No',
          lastName: 'Orchestrator',
        },
      });
      expect(signedUp.body.errors).toBeUndefined();
      expect(signedUp.body.data?.signUp.user.id).toMatch(/^[0-9a-f-]{36}$/);
    }

    await startRegistry();
    if (redisUrl) {
      // Recovered from Redis: the instances are there at once, and none had to register again.
      expect(await instances()).toEqual(['ai', 'auth', 'gateway', 'media', 'notifications', 'users']);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(registry.lines.some((line) => line.includes('"instance registered"'))).toBe(false);
    } else {
      // Rebuilt from heartbeats: each instance hears 404 and registers again. Meanwhile its tables say
      // `rebuilding`, and the gateway keeps routing to the services not back yet: no request fails.
      const failures: unknown[] = [];
      await waitFor(
        async () => {
          const me = await graphql(gatewayUrl, '{ me { id } }');
          if (me.body.errors) failures.push(me.body.errors);
          return (
            JSON.stringify(await instances()) === '["ai","auth","gateway","media","notifications","users"]'
          );
        },
        15_000,
        'every instance to register again',
      );
      expect(failures).toEqual([]);
      // Each registration is logged; the last line may reach us a moment after the registry answers.
      await waitFor(
        async () => registry.lines.filter((line) => line.includes('"instance registered"')).length >= 4,
        5_000,
        'the four registrations to be logged',
      );
    }
    const me = await graphql(gatewayUrl, '{ me { id } }');
    expect(me.body).toEqual({ data: { me: null } });
  });
}

suite('without Redis', undefined);
await describeInfra(
  'orchestrator restart on Redis',
  { envVar: 'REDIS_URL', defaultUrl: 'redis://127.0.0.1:6379' },
  (url) => suite('on Redis', url),
);
