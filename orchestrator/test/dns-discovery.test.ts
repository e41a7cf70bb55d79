import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sdlHash } from '@aiva/shared';
import { waitFor } from '@aiva/shared/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  PRODUCTS_SDL,
  type RunningRegistry,
  routedIds,
  startRegistry,
  startSubgraph,
  type TestProject,
  type TestSubgraph,
  testConfig,
  writeProject,
} from './fixtures/registry-harness.js';

// DNS discovery against a real DNS server on the loopback: dnsmasq answers `products.aiva.test` from a hosts
// file with 127.0.0.2 and 127.0.0.3 (both loopback on Linux), where two real subgraph servers listen on one
// port. No self-registration: the registry finds them, probes them, fetches their SDL and routes to them.

const DNSMASQ = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq'].find((path) => existsSync(path));
const NAME = 'products.aiva.test';
const WAIT = 10_000;

/** A free UDP port on the loopback (dnsmasq listens on it, UDP and TCP). */
function spareUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

interface Dnsmasq {
  port: number;
  /** Rewrites the hosts file and tells dnsmasq to read it again (SIGHUP). */
  answer(addresses: string[]): void;
  stop(): Promise<void>;
}

async function startDnsmasq(dir: string, addresses: string[]): Promise<Dnsmasq> {
  const hostsFile = join(dir, 'hosts');
  const write = (list: string[]) => writeFileSync(hostsFile, list.map((a) => `${a} ${NAME}\n`).join(''));
  write(addresses);
  chmodSync(hostsFile, 0o644);
  const port = await spareUdpPort();
  const child: ChildProcess = spawn(
    DNSMASQ!,
    [
      '--no-daemon',
      '--keep-in-foreground',
      `--port=${port}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      `--addn-hosts=${hostsFile}`,
      '--pid-file=',
      '--user=',
      '--local-ttl=0',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`dnsmasq exited: ${stderr}`);
        return (await resolver.resolve4(NAME).catch(() => [])).length > 0;
      },
      WAIT,
      'dnsmasq to answer',
    );
  } catch (error) {
    child.kill('SIGTERM');
    throw error;
  }
  return {
    port,
    answer(list) {
      write(list);
      child.kill('SIGHUP');
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

function describeDns(name: string, fn: () => void): void {
  if (DNSMASQ) {
    describe(name, fn);
    return;
  }
  const reason = 'dnsmasq is not installed (Debian package `dnsmasq-base`)';
  if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs dnsmasq', () => {
        throw new Error(`[${name}] ${reason}. In CI it is required.`);
      });
    });
    return;
  }
  console.warn(`[${name}] skipped: ${reason}`);
  describe.skip(name, fn);
}

describeDns('DNS discovery', () => {
  let project: TestProject;
  let dir: string;
  let subgraphs: TestSubgraph[] = [];
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    project = writeProject();
    dir = mkdtempSync(join(tmpdir(), 'aiva-dns-'));
    chmodSync(dir, 0o755);
    const first = await startSubgraph('products', PRODUCTS_SDL, '127.0.0.2');
    const port = Number(new URL(first.url).port);
    subgraphs = [first, await startSubgraph('products', PRODUCTS_SDL, '127.0.0.3', port)];
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    for (const subgraph of subgraphs) await subgraph.close();
    project.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  async function setup(): Promise<{ r: RunningRegistry; dns: Dnsmasq; port: number }> {
    const dns = await startDnsmasq(dir, ['127.0.0.2', '127.0.0.3']);
    cleanups.push(() => dns.stop());
    const port = Number(new URL(subgraphs[0]!.url).port);
    const r = await startRegistry(
      testConfig(project, {
        DISCOVERY_DNS: `products=${NAME}:${port}`,
        DNS_SERVERS: `127.0.0.1:${dns.port}`,
        DNS_REFRESH_MS: '200',
      }),
    );
    cleanups.push(() => r.close());
    return { r, dns, port };
  }

  it('finds every address of the name, probes them, checks their SDL and routes to them', async () => {
    const { r, port } = await setup();
    const ids = [`dns:products@127.0.0.2:${port}`, `dns:products@127.0.0.3:${port}`];
    await waitFor(
      async () => routedIds(await api.table(r.url), 'products').length === 2,
      WAIT,
      'both addresses routed',
    );
    expect(routedIds(await api.table(r.url), 'products')).toEqual(ids);
    const views = await api.instances(r.url, 'products');
    expect(views).toEqual([
      expect.objectContaining({
        instanceId: ids[0],
        url: `http://127.0.0.2:${port}`,
        source: 'dns',
        health: 'healthy',
        schema: 'ok',
        sdlHash: sdlHash(PRODUCTS_SDL),
      }),
      expect.objectContaining({
        instanceId: ids[1],
        url: `http://127.0.0.3:${port}`,
        source: 'dns',
        schema: 'ok',
      }),
    ]);
  });

  it('drops an address that leaves the DNS answer, and keeps the last answer while DNS does not answer', async () => {
    const { r, dns, port } = await setup();
    const kept = `dns:products@127.0.0.2:${port}`;
    const leaving = `dns:products@127.0.0.3:${port}`;
    await waitFor(
      async () => routedIds(await api.table(r.url), 'products').length === 2,
      WAIT,
      'both addresses routed',
    );

    dns.answer(['127.0.0.2']);
    await waitFor(
      async () => !(await api.instance(r.url, leaving)),
      WAIT,
      'the address gone from the registry',
    );
    expect(routedIds(await api.table(r.url), 'products')).toEqual([kept]);

    // A DNS server that stops answering is an outage, not an empty answer: the instance stays.
    await dns.stop();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(routedIds(await api.table(r.url), 'products')).toEqual([kept]);
  });
});
