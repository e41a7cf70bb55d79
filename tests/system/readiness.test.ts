import { registryToken } from '@aiva/shared';
import { waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';
import { freePort, type RunningSystem, type Spawned, spawnNode, startSystem } from './helpers/system.js';

// An instance whose /ready fails stops getting traffic and comes back when it is healthy again. The second auth
// instance here is a real process whose sessions live in a private redis-server: sessions are a hard dependency of
// auth, so killing that server makes the instance's /ready answer 503, while the first instance keeps serving.
// (A soft dependency going down — the event bus, a cache — leaves an instance ready: see tests/system/faults.)

const SECRET = 'a-registry-secret-for-the-readiness-test-0123456789';
let system: RunningSystem;
let redis: TestRedisServer;
let second: Spawned;
let secondPort = 0;

const secondInstance = async () =>
  (await system.instances('auth')).find((i) => i.url === `http://127.0.0.1:${secondPort}`);
const routedAuth = async () => (await system.routing()).services.auth?.instances.map((i) => i.url) ?? [];

beforeAll(async () => {
  redis = await startRedisServer();
  system = await startSystem({ env: { REGISTRY_SECRET: SECRET } });
  secondPort = await freePort();
  second = spawnNode(['subgraphs/auth/src/main.ts'], {
    ...system.env,
    AUTH_PORT: String(secondPort),
    REDIS_URL: redis.url,
    ORCHESTRATOR_URL: system.orchestratorUrl,
    REGISTRY_TOKEN: registryToken(SECRET, 'auth'),
  });
  await waitFor(
    async () => (await routedAuth()).length === 2,
    30_000,
    'the second auth instance to be routed',
  );
}, 120_000);

afterAll(async () => {
  second?.child.kill('SIGKILL');
  await Promise.all([second?.exited, system?.stop('SIGKILL'), redis?.stop()]);
}, 60_000);

describe('readiness', () => {
  it('takes an instance whose /ready fails out of the routing table, and puts it back once it is ready', async () => {
    await redis.stop();
    const down = await waitFor(
      async () => {
        const instance = await secondInstance();
        return instance?.health === 'unhealthy' ? instance : null;
      },
      20_000,
      'the second instance to be unhealthy',
    );
    // Its /ready answers 503 once the sessions check fails; the probe may give up on it before that.
    expect(down.healthReason).toMatch(/503|no answer/);
    expect(await routedAuth()).toEqual([`http://127.0.0.1:${system.ports.auth}`]);
    const ready = await fetch(`http://127.0.0.1:${secondPort}/ready`);
    expect(ready.status).toBe(503);

    await redis.start();
    await waitFor(async () => (await routedAuth()).length === 2, 30_000, 'the instance to be routed again');
    expect((await secondInstance())?.health).toBe('healthy');
  });
});
