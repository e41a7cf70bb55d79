import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { graphql, waitFor } from '@aiva/shared/testing';
import { expect } from 'vitest';
import { cleanEnv, freePort, type Spawned, spawnNode } from './system.js';

/** The services of AIVA, as processes of their own (no orchestrator): what fault tests start and kill. */
export type ServiceName = 'auth' | 'users' | 'ai' | 'media' | 'notifications' | 'gateway';

const ENTRIES: Record<ServiceName, string> = {
  auth: 'subgraphs/auth/src/main.ts',
  users: 'subgraphs/users/src/main.ts',
  ai: 'subgraphs/ai/src/main.ts',
  media: 'subgraphs/media/src/main.ts',
  notifications: 'subgraphs/notifications/src/main.ts',
  gateway: 'gateway/src/main.ts',
};

export interface RunningServices {
  /** Base URLs (`http://127.0.0.1:<port>`). */
  base: Record<ServiceName, string>;
  /** The gateway's `/graphql`. */
  gatewayUrl: string;
  dataDir: string;
  /** The environment of each service (common variables and its own). */
  env: Record<ServiceName, NodeJS.ProcessEnv>;
  process(service: ServiceName): Spawned;
  /** Starts a service (again, on the same port and data) and waits until its `/health` answers. */
  start(service: ServiceName): Promise<void>;
  /** Kills a service (SIGKILL) and waits for it to exit. */
  kill(service: ServiceName): Promise<void>;
  /** The Prometheus text of a service's `/metrics`. */
  metrics(service: ServiceName): Promise<string>;
  /** A service's `/ready`: its status and body. */
  ready(service: ServiceName): Promise<{ status: number; body: ReadyBody }>;
  /** Kills every service and removes the data directory. */
  stop(): Promise<void>;
}

export interface ReadyBody {
  status: string;
  checks: Record<string, string>;
  degraded?: Record<string, string>;
}

export interface StartServicesOptions {
  /** Variables of every service, on top of the defaults (fresh DATA_DIR, free ports, rate limits off). */
  env?: Record<string, string | undefined>;
  /** Variables of one service, on top of `env` (`undefined` removes a variable). */
  perService?: Partial<Record<ServiceName, Record<string, string | undefined>>>;
}

/**
 * Starts auth, users, ai, media, notifications and the gateway as processes of their own from source, as a deployment without the
 * orchestrator runs them (the gateway routes to the supergraph's subgraphs at SUBGRAPH_<NAME>_URL; the
 * orchestrator's address is a port nothing listens on), so each can be given its own Redis, and killed and
 * started again on its own. Resolves once each answers `/health`.
 */
export async function startServices(options: StartServicesOptions = {}): Promise<RunningServices> {
  const ports: Record<ServiceName, number> = {
    auth: await freePort(),
    users: await freePort(),
    ai: await freePort(),
    media: await freePort(),
    notifications: await freePort(),
    gateway: await freePort(),
  };
  const base = Object.fromEntries(
    Object.entries(ports).map(([service, port]) => [service, `http://127.0.0.1:${port}`]),
  ) as Record<ServiceName, string>;
  const dataDir = mkdtempSync(join(tmpdir(), 'aiva-faults-'));
  const common = {
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    ORCHESTRATOR_URL: `http://127.0.0.1:${await freePort()}`,
    AUTH_PORT: String(ports.auth),
    USERS_PORT: String(ports.users),
    AI_PORT: String(ports.ai),
    MEDIA_PORT: String(ports.media),
    NOTIFICATIONS_PORT: String(ports.notifications),
    GATEWAY_PORT: String(ports.gateway),
    AUTH_JWKS_URL: `${base.auth}/.well-known/jwks.json`,
    SUBGRAPH_AUTH_URL: `${base.auth}/graphql`,
    SUBGRAPH_USERS_URL: `${base.users}/graphql`,
    SUBGRAPH_AI_URL: `${base.ai}/graphql`,
    SUBGRAPH_MEDIA_URL: `${base.media}/graphql`,
    SUBGRAPH_NOTIFICATIONS_URL: `${base.notifications}/graphql`,
    // Upload and download URLs point at this gateway.
    MEDIA_PUBLIC_URL: base.gateway,
    AI_PUBLIC_URL: base.gateway,
    RATE_LIMIT_MAX: '0',
    ...options.env,
  };
  const env = Object.fromEntries(
    (Object.keys(ENTRIES) as ServiceName[]).map((service) => [
      service,
      cleanEnv({ ...common, ...options.perService?.[service] }),
    ]),
  ) as Record<ServiceName, NodeJS.ProcessEnv>;
  const processes = new Map<ServiceName, Spawned>();

  const running: RunningServices = {
    base,
    gatewayUrl: `${base.gateway}/graphql`,
    dataDir,
    env,
    process(service) {
      const spawned = processes.get(service);
      if (!spawned) throw new Error(`${service} was not started`);
      return spawned;
    },
    async start(service) {
      const spawned = spawnNode([ENTRIES[service]], env[service]);
      processes.set(service, spawned);
      try {
        await waitFor(
          async () => {
            if (spawned.child.exitCode !== null) throw new Error(`${service} exited`);
            return (await fetch(`${base[service]}/health`).catch(() => null))?.ok;
          },
          60_000,
          `${service} to answer /health`,
        );
      } catch (error) {
        throw new Error(`${service} did not start:\n${spawned.lines.slice(-30).join('\n')}`, {
          cause: error,
        });
      }
    },
    async kill(service) {
      const spawned = processes.get(service);
      if (!spawned || spawned.child.exitCode !== null || spawned.child.signalCode !== null) return;
      spawned.child.kill('SIGKILL');
      await spawned.exited;
    },
    async metrics(service) {
      return (await fetch(`${base[service]}/metrics`)).text();
    },
    async ready(service) {
      const response = await fetch(`${base[service]}/ready`);
      return { status: response.status, body: (await response.json()) as ReadyBody };
    },
    async stop() {
      await Promise.all([...processes.keys()].map((service) => running.kill(service)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    // Auth first: users' profiles and the gateway's keys come from it.
    await running.start('auth');
    await running.start('users');
    await running.start('ai');
    await running.start('media');
    await running.start('notifications');
    await running.start('gateway');
  } catch (error) {
    await running.stop();
    throw error;
  }
  return running;
}

/** The value of one series of a Prometheus text (0 when absent), e.g. `metric(text, 'aiva_x_total', { a: 'b' })`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const matches = Object.entries(labels).every(([label, value]) => line.includes(`${label}="${value}"`));
    if (matches) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { accessToken user { id } } }`;

/** Signs a person up through the gateway (the sign-up must succeed); their access token and user id. */
export async function signUpThrough(
  gatewayUrl: string,
  input: { email: string; password: string; username: string; firstName: string; lastName: string },
): Promise<{ token: string; userId: string }> {
  const signedUp = await graphql<{ signUp: { accessToken: string; user: { id: string } } }>(
    gatewayUrl,
    SIGN_UP,
    {
      input,
    },
  );
  expect(signedUp.body.errors).toBeUndefined();
  return { token: signedUp.body.data!.signUp.accessToken, userId: signedUp.body.data!.signUp.user.id };
}
