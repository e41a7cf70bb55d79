import { registryToken } from '@aiva/shared';
import { waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer, type TestNatsServer } from './helpers/nats-server.js';
import { freePort, type RunningSystem, type Spawned, spawnNode, startSystem } from './helpers/system.js';

// An instance whose /ready fails stops getting traffic and comes back when it is healthy again. The second users
// instance here is a real process whose event bus is a private nats-server: killing that server makes the
// instance's /ready answer 503 (its events dependency is down), while the first instance keeps serving.

const SECRET = 'a-registry-secret-for-the-readiness-test-0123456789';
let system: RunningSystem;
let nats: TestNatsServer;
let second: Spawned;
let secondPort = 0;

const secondInstance = async () =>
  (await system.instances('users')).find((i) => i.url === `http://127.0.0.1:${secondPort}`);
const routedUsers = async () => (await system.routing()).services.users?.instances.map((i) => i.url) ?? [];

beforeAll(async () => {
  nats = await startNatsServer();
  system = await startSystem({ env: { REGISTRY_SECRET: SECRET } });
  secondPort = await freePort();
  second = spawnNode(['subgraphs/users/src/main.ts'], {
    ...system.env,
    USERS_PORT: String(secondPort),
    NATS_URL: nats.url,
    ORCHESTRATOR_URL: system.orchestratorUrl,
    REGISTRY_TOKEN: registryToken(SECRET, 'users'),
  });
  await waitFor(
    async () => (await routedUsers()).length === 2,
    30_000,
    'the second users instance to be routed',
  );
}, 120_000);

afterAll(async () => {
  second?.child.kill('SIGKILL');
  await Promise.all([second?.exited, system?.stop('SIGKILL'), nats?.stop()]);
}, 60_000);

describe('readiness', () => {
  it('takes an instance whose /ready fails out of the routing table, and puts it back once it is ready', async () => {
    await nats.stop();
    const down = await waitFor(
      async () => {
        const instance = await secondInstance();
        return instance?.health === 'unhealthy' ? instance : null;
      },
      20_000,
      'the second instance to be unhealthy',
    );
    // Its /ready answers 503 once the NATS check times out; the probe may give up on it before that.
    expect(down.healthReason).toMatch(/503|no answer/);
    expect(await routedUsers()).toEqual([`http://127.0.0.1:${system.ports.users}`]);
    const ready = await fetch(`http://127.0.0.1:${secondPort}/ready`);
    expect(ready.status).toBe(503);

    await nats.start();
    await waitFor(async () => (await routedUsers()).length === 2, 30_000, 'the instance to be routed again');
    expect((await secondInstance())?.health).toBe('healthy');
  });
});
