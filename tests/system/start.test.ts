import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bearer, graphql, waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logOf, type RunningSystem, startSystem } from './helpers/system.js';

// `pnpm start` as a user runs it: the orchestrator starts every service as its own process, each registers,
// the gateway routes through the registry's table. Real processes, real HTTP.

const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { accessToken user { id } } }`;
const dataDir = mkdtempSync(join(tmpdir(), 'aiva-start-'));
let system: RunningSystem;
let accessToken = '';
let userId = '';

beforeAll(async () => {
  system = await startSystem({ dataDir });
}, 120_000);

afterAll(async () => {
  await system?.stop('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('pnpm start', () => {
  it('runs auth, users, ai, media, notifications and the gateway each in a process of its own, registered and routed', async () => {
    const instances = await system.instances();
    const byService = Object.fromEntries(instances.map((i) => [i.service, i]));
    expect(Object.keys(byService).sort()).toEqual([
      'ai',
      'auth',
      'gateway',
      'media',
      'notifications',
      'users',
    ]);
    for (const instance of instances) {
      expect(instance).toMatchObject({ health: 'healthy', schema: expect.not.stringMatching('mismatch') });
      expect(instance.slot).toBe(`${instance.service}#1`);
    }
    expect(byService.users?.url).toBe(`http://127.0.0.1:${system.ports.users}`);
    expect(byService.auth?.url).toBe(`http://127.0.0.1:${system.ports.auth}`);
    const status = (await (await fetch(`${system.orchestratorUrl}/v1/status`)).json()) as {
      processes: Array<{ service: string; pid: number; state: string }> | null;
    };
    const pids = (status.processes ?? []).map((p) => p.pid);
    expect(new Set(pids).size).toBe(6);
    expect(pids).not.toContain(system.process.child.pid);
    expect((status.processes ?? []).every((p) => p.state === 'running')).toBe(true);

    const table = await system.routing();
    expect(Object.keys(table.services).sort()).toEqual(['ai', 'auth', 'media', 'notifications', 'users']);
    expect(table.supergraph?.mode).toBe('committed');
  });

  it('signs up through the gateway (auth calling users directly) and answers me from both subgraphs', async () => {
    const signedUp = await graphql<{ signUp: { accessToken: string; user: { id: string } } }>(
      system.gatewayUrl,
      SIGN_UP,
      {
        input: {
          email: 'start@example.test',
          password: 'a long password',
          username: 'starter',
          firstName: 'Ada',
          lastName: 'Start',
        },
      },
    );
    expect(signedUp.body.errors).toBeUndefined();
    accessToken = signedUp.body.data!.signUp.accessToken;
    userId = signedUp.body.data!.signUp.user.id;
    const me = await graphql(
      system.gatewayUrl,
      '{ me { id username email roles } }',
      {},
      bearer(accessToken),
    );
    expect(me.body).toEqual({
      data: { me: { id: userId, username: 'starter', email: 'start@example.test', roles: ['user'] } },
    });
  });

  it("serves auth's JWKS on the gateway's port: a public route auth declared when it registered", async () => {
    const viaGateway = await fetch(`http://127.0.0.1:${system.ports.gateway}/.well-known/jwks.json`);
    const direct = await fetch(`http://127.0.0.1:${system.ports.auth}/.well-known/jwks.json`);
    expect(viaGateway.status).toBe(200);
    expect(await viaGateway.json()).toEqual(await direct.json());
    const unknown = await fetch(`http://127.0.0.1:${system.ports.gateway}/no/such/route`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ errors: [{ extensions: { code: 'NOT_FOUND' } }] });
  });

  it('stops on Ctrl-C: the gateway first, then notifications, media, ai, users, auth, and the registry last', async () => {
    const { code } = await system.stop('SIGINT');
    expect(code).toBe(0);
    const stopped = (label: string) =>
      system.process.lines.findIndex(
        (line) => line.startsWith(label) && line.includes(`"${label.trim()} stopped"`),
      );
    const order = ['gateway', 'notifications', 'media', 'ai', 'users', 'auth'].map((label) => stopped(label));
    expect(order.every((index) => index >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(system.process.lines.some((line) => line.includes('every service stopped'))).toBe(true);
  });

  // A whole system start from source (six services one after the other, each waiting for the one before) takes
  // 15 to 25 s on a 2-core machine: the same bound as the first start's.
  it('starts again on the same data: the profile is there and the token from before still verifies', async () => {
    system = await startSystem({ dataDir });
    const me = await graphql(system.gatewayUrl, '{ me { id username } }', {}, bearer(accessToken));
    expect(me.body).toEqual({ data: { me: { id: userId, username: 'starter' } } });
  }, 120_000);

  it("carries users' user.deleted event to auth in another process: the account goes with the profile", async () => {
    const deleted = await graphql(
      system.gatewayUrl,
      'mutation($id: ID!) { deleteUser(id: $id) }',
      { id: userId },
      bearer(accessToken),
    );
    expect(deleted.body).toEqual({ data: { deleteUser: true } });
    // Waited for in auth's log, not by signing in (a sign-in that succeeds before the event arrives would start a
    // second session).
    const removal = await waitFor(
      () =>
        logOf(system.process.lines, 'auth').find((line) => line.msg === 'account removed with its profile'),
      15_000,
      'auth to remove the account',
    );
    expect(removal).toMatchObject({ userId, sessionsEnded: 1 });
    const signIn = await graphql(
      system.gatewayUrl,
      'mutation { signIn(input: { email: "start@example.test", password: "a long password" }) { accessToken } }',
    );
    expect(signIn.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    // auth ended the session in its process; the gateway, in another, refuses its access token from now on.
    const stale = await graphql(system.gatewayUrl, '{ me { id } }', {}, bearer(accessToken));
    expect(stale.status).toBe(401);
    expect(stale.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});
