import { connect as tcpConnect } from 'node:net';
import { describe, it } from 'vitest';

/** Default ports by URL scheme, for URLs that do not name one. */
const DEFAULT_PORTS: Record<string, number> = {
  nats: 4222,
  tls: 4222,
  redis: 6379,
  rediss: 6379,
  mongodb: 27017,
  http: 80,
  https: 443,
};

export interface Endpoint {
  host: string;
  port: number;
}

/**
 * The host:port pairs of a service URL. Handles comma-separated host lists (`mongodb://a:1,b:2/db`,
 * `nats://a:4222,nats://b:4222`) and credentials, which are ignored. Returns [] when nothing can be parsed.
 */
export function endpointsOf(url: string): Endpoint[] {
  const endpoints: Endpoint[] = [];
  for (const part of url.split(',')) {
    const match = /^(?:([a-z][a-z0-9+.-]*):\/\/)?(?:[^@/]*@)?(\[[^\]]+\]|[^:/?#]+)(?::(\d+))?/i.exec(
      part.trim(),
    );
    if (!match?.[2]) continue;
    const scheme = (match[1] ?? url.split('://')[0] ?? '').toLowerCase();
    const port = match[3] ? Number(match[3]) : DEFAULT_PORTS[scheme];
    if (port) endpoints.push({ host: match[2].replace(/^\[|\]$/g, ''), port });
  }
  return endpoints;
}

/** The URL without user info, for messages: `redis://:secret@host` must not reach a log. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/g, '//***@');
}

/** True when a TCP connection to host:port opens within `timeoutMs`. */
export function tcpReachable(endpoint: Endpoint, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: endpoint.host, port: endpoint.port });
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/**
 * True when the server behind a service URL accepts TCP connections (any of its hosts). URLs that cannot be
 * checked by TCP (e.g. `mongodb+srv://`, resolved through DNS) count as available: the suite will tell.
 */
export async function infraAvailable(url: string, timeoutMs = 1_000): Promise<boolean> {
  if (/^mongodb\+srv:/i.test(url)) return true;
  const endpoints = endpointsOf(url);
  if (endpoints.length === 0) return false;
  const results = await Promise.all(endpoints.map((e) => tcpReachable(e, timeoutMs)));
  return results.some(Boolean);
}

export interface InfraGate {
  /** The environment variable naming the server, e.g. `NATS_URL`. */
  envVar: string;
  /**
   * Used when the variable is unset. Undefined means the suite needs the variable: it is skipped (with a
   * message) when unset, even in CI.
   */
  defaultUrl: string | undefined;
  /** TCP connect timeout for the availability check (default 1000 ms). */
  timeoutMs?: number;
}

/**
 * Declares a suite that needs a server. The URL is `process.env[envVar]`, else `defaultUrl`.
 * - server answers: the suite runs (`fn` gets the URL);
 * - no URL at all (no variable, no default): skipped with a warning, also in CI;
 * - URL but no answer: in CI (`CI=true`) the suite fails with a message naming the variable and URL;
 *   elsewhere it is skipped with a warning.
 *
 * Call it with top-level await in the test file: `await describeInfra('nats bus', {...}, (url) => {...})`.
 * `fn` must only register tests and hooks (it is also called to list skipped tests).
 */
export async function describeInfra(name: string, gate: InfraGate, fn: (url: string) => void): Promise<void> {
  const configured = process.env[gate.envVar]?.trim();
  const url = configured || gate.defaultUrl;
  if (!url) {
    console.warn(`[${name}] skipped: ${gate.envVar} is not set`);
    describe.skip(name, () => fn(''));
    return;
  }
  if (await infraAvailable(url, gate.timeoutMs)) {
    describe(name, () => fn(url));
    return;
  }
  const source = configured
    ? `${gate.envVar}=${redactUrl(url)}`
    : `${redactUrl(url)} (default; set ${gate.envVar} to change)`;
  const reason = `no server answers at ${source}`;
  if (process.env.CI === 'true') {
    describe(name, () => {
      it(`needs a server at ${gate.envVar}`, () => {
        throw new Error(`[${name}] ${reason}. In CI the server is required: start it or fix ${gate.envVar}.`);
      });
    });
    return;
  }
  console.warn(`[${name}] skipped: ${reason}`);
  describe.skip(name, () => fn(url));
}
