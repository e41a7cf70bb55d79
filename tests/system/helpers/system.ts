import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type InstanceView, REGISTRY_API, type RoutingTable } from '@aiva/shared';
import { waitFor } from '@aiva/shared/testing';

/** The repository root: every process runs from there, as `pnpm start` runs them. */
export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');

/** A port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

/** Variables of the test process that would change how AIVA starts; each system sets its own. */
const SCRUBBED =
  /^(NATS_URL|REDIS_URL|MONGODB_URL|DATA_DIR|HOST|LOG_LEVEL|NODE_ENV|NODE_OPTIONS|REGISTRY_.*|ORCHESTRATOR_.*|SUPERGRAPH_.*|.*_PORT|AUTH_.*|SUBGRAPH_.*|AIVA_.*|VITEST.*|TEST)$/;

export function cleanEnv(vars: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!SCRUBBED.test(name)) env[name] = value;
  for (const [name, value] of Object.entries(vars)) if (value !== undefined) env[name] = value;
  return env;
}

/** A process started by a test: its output lines, and how it ended. */
export interface Spawned {
  child: ChildProcess;
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first output line matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

/** Runs a TypeScript entry point through tsx (or, `plain`, a built file with node alone) from the repository root. */
export function spawnNode(
  args: string[],
  env: NodeJS.ProcessEnv,
  options: { plain?: boolean } = {},
): Spawned {
  const loader = options.plain ? [] : ['--conditions=aiva-source', '--import', 'tsx'];
  const child = spawn(process.execPath, [...loader, ...args], {
    cwd: ROOT,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const collect = (stream: NodeJS.ReadableStream | null) => {
    let rest = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      lines.push(...parts);
    });
    stream?.on('end', () => {
      if (rest) lines.push(rest);
    });
  };
  collect(child.stdout);
  collect(child.stderr);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    child.once('exit', (code, signal) => done({ code, signal }));
  });
  return {
    child,
    lines,
    exited,
    waitForLine: (pattern, timeoutMs = 60_000) =>
      waitFor(() => lines.find((line) => pattern.test(line)), timeoutMs, `a line matching ${pattern}`),
  };
}

export interface SystemPorts {
  orchestrator: number;
  gateway: number;
  users: number;
  auth: number;
  ai: number;
  media: number;
  notifications: number;
}

export interface RunningSystem {
  process: Spawned;
  ports: SystemPorts;
  dataDir: string;
  gatewayUrl: string;
  orchestratorUrl: string;
  /** The environment the orchestrator was started with. */
  env: NodeJS.ProcessEnv;
  instances(service?: string): Promise<InstanceView[]>;
  routing(): Promise<RoutingTable>;
  /** Sends `signal` (default SIGINT, as Ctrl-C) and waits for the orchestrator to exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartSystemOptions {
  /** The orchestrator's command and flags (default `start --runtime source`). */
  args?: string[];
  /** Variables on top of the defaults (a fresh DATA_DIR, free ports, rate limits off). */
  env?: Record<string, string | undefined>;
  dataDir?: string;
  ports?: SystemPorts;
  /** Wait for the "AIVA is up" line (default true). */
  waitUp?: boolean;
  /** Run the orchestrator from its built file (`pnpm start`'s `node orchestrator/dist/main.js`), not tsx. */
  built?: boolean;
}

/**
 * Starts AIVA as `pnpm start` does, as real processes (from source, through tsx, so no build is needed): the
 * orchestrator, which starts auth, users and the gateway, each its own process. Free ports and a fresh data
 * directory, so systems of several tests do not meet.
 */
export async function startSystem(options: StartSystemOptions = {}): Promise<RunningSystem> {
  const ports = options.ports ?? {
    orchestrator: await freePort(),
    gateway: await freePort(),
    users: await freePort(),
    auth: await freePort(),
    ai: await freePort(),
    media: await freePort(),
    notifications: await freePort(),
  };
  const ownData = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'aiva-system-'));
  const env = cleanEnv({
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    ORCHESTRATOR_PORT: String(ports.orchestrator),
    GATEWAY_PORT: String(ports.gateway),
    USERS_PORT: String(ports.users),
    AUTH_PORT: String(ports.auth),
    AI_PORT: String(ports.ai),
    MEDIA_PORT: String(ports.media),
    NOTIFICATIONS_PORT: String(ports.notifications),
    // Upload and download URLs point at this system's gateway.
    MEDIA_PUBLIC_URL: `http://127.0.0.1:${ports.gateway}`,
    AI_PUBLIC_URL: `http://127.0.0.1:${ports.gateway}`,
    AUTH_JWKS_URL: `http://127.0.0.1:${ports.auth}/.well-known/jwks.json`,
    RATE_LIMIT_MAX: '0',
    // Short intervals: faults are noticed within a second.
    HEARTBEAT_INTERVAL_MS: '500',
    INSTANCE_TTL_MS: '2000',
    PROBE_INTERVAL_MS: '500',
    ...options.env,
  });
  const args = options.args ?? ['start', '--runtime', 'source'];
  const spawned = options.built
    ? spawnNode(['orchestrator/dist/main.js', ...args], env, { plain: true })
    : spawnNode(['orchestrator/src/main.ts', ...args], env);
  const orchestratorUrl = `http://127.0.0.1:${ports.orchestrator}`;
  const system: RunningSystem = {
    process: spawned,
    ports,
    dataDir,
    env,
    gatewayUrl: `http://127.0.0.1:${ports.gateway}/graphql`,
    orchestratorUrl,
    async instances(service) {
      const url = new URL(REGISTRY_API.instances, orchestratorUrl);
      if (service) url.searchParams.set('service', service);
      const body = (await (await fetch(url)).json()) as { instances: InstanceView[] };
      return body.instances;
    },
    async routing() {
      return (await (await fetch(new URL(REGISTRY_API.routing, orchestratorUrl))).json()) as RoutingTable;
    },
    async stop(signal = 'SIGINT') {
      if (spawned.child.exitCode === null && spawned.child.signalCode === null) spawned.child.kill(signal);
      const result = await spawned.exited;
      if (ownData) rmSync(dataDir, { recursive: true, force: true });
      return result;
    },
  };
  if (options.waitUp ?? true) {
    try {
      await spawned.waitForLine(/AIVA is up/, 90_000);
    } catch (error) {
      await system.stop('SIGKILL');
      throw new Error(`AIVA did not come up:\n${spawned.lines.slice(-40).join('\n')}`, { cause: error });
    }
  }
  return system;
}

/** The JSON log lines of one service's output (prefixed `users │ …` by the supervisor), parsed. */
export function logOf(lines: readonly string[], label: string): Array<Record<string, unknown>> {
  const prefix = new RegExp(`^${label.replace('#', '\\#')}\\s*│ `);
  return lines
    .filter((line) => prefix.test(line))
    .map((line) => {
      try {
        return JSON.parse(line.replace(prefix, '')) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}
