import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { graphql, waitFor } from '@aiva/shared/testing';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, ROOT, type RunningSystem, startSystem } from './helpers/system.js';

// `pnpm dev <subgraph>`: the whole system, one subgraph in watch mode, the supergraph composed live from what
// the instances serve. An SDL edit is queryable through the gateway within seconds, the gateway never
// restarting; an edit that breaks composition leaves the last good supergraph in service.

const LINK = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])\n';
const work = join('tests/system/work', `dev-${process.pid}`);
const notesDir = join(work, 'notes');
const sdlFile = join(ROOT, notesDir, 'notes.graphql');
let system: RunningSystem;

function manifest(notesPort: number): string {
  const services = readFileSync(join(ROOT, 'orchestrator/services.yaml'), 'utf8');
  const notes = [
    '  - name: notes',
    '    package: "@aiva/tests"',
    `    dir: ${notesDir}`,
    '    entry: notes.js',
    '    source: notes.ts',
    `    port: ${notesPort}`,
    '    portVariable: NOTES_PORT',
    '    kind: subgraph',
    '    watch: [notes.graphql]',
    '',
  ].join('\n');
  // Before the gateway, like any subgraph.
  return services.replace('  - name: gateway', `${notes}\n  - name: gateway`);
}

async function gatewayProcess() {
  const status = (await (await fetch(`${system.orchestratorUrl}/v1/status`)).json()) as {
    processes: Array<{ slot: string; pid: number; restarts: number }>;
    composition: { served: { hash: string } | null; lastAttempt: { ok: boolean; errors: string[] } | null };
  };
  return { gateway: status.processes.find((p) => p.slot === 'gateway#1')!, composition: status.composition };
}

const queryFields = async () =>
  (
    await graphql<{ __type: { fields: Array<{ name: string }> } }>(
      system.gatewayUrl,
      '{ __type(name: "Query") { fields { name } } }',
    )
  ).body.data?.__type.fields.map((f) => f.name) ?? [];

beforeAll(async () => {
  mkdirSync(join(ROOT, notesDir), { recursive: true });
  copyFileSync(join(ROOT, 'tests/system/fixtures/notes-subgraph.ts'), join(ROOT, notesDir, 'notes.ts'));
  writeFileSync(sdlFile, `${LINK}type Query { note: String }\n`);
  const manifestFile = join(ROOT, work, 'services.yaml');
  writeFileSync(manifestFile, manifest(await freePort()));
  system = await startSystem({ args: ['dev', 'notes'], env: { SERVICES_FILE: manifestFile } });
}, 120_000);

afterAll(async () => {
  await system?.stop('SIGKILL');
  rmSync(join(ROOT, work), { recursive: true, force: true });
});

describe('pnpm dev notes', { timeout: 60_000 }, () => {
  it('composes the live subgraphs, a new one included, and serves it through the gateway', async () => {
    const table = await system.routing();
    expect(table.supergraph?.mode).toBe('live');
    expect(Object.keys(table.services).sort()).toEqual([
      'ai',
      'auth',
      'media',
      'notes',
      'notifications',
      'users',
    ]);
    const result = await graphql(system.gatewayUrl, '{ note }');
    expect(result.body).toEqual({ data: { note: 'note from notes' } });
  });

  it('serves a field added to the SDL within seconds, without restarting the gateway, and tells MCP clients', async () => {
    const before = (await gatewayProcess()).gateway;
    // An MCP client holding the gateway's notification stream (the SDK opens it after initialising).
    const mcp = new Client({ name: 'dev-test', version: '1.0.0' });
    let toolsChanged = 0;
    mcp.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      toolsChanged++;
    });
    await mcp.connect(
      new StreamableHTTPClientTransport(new URL('/mcp', system.gatewayUrl.replace(/\/graphql$/, ''))),
    );
    await mcp.listTools();
    writeFileSync(sdlFile, `${LINK}type Query { note: String latestNote: String }\n`);
    await waitFor(
      async () =>
        (await graphql(system.gatewayUrl, '{ latestNote }')).body.data?.latestNote ===
        'latestNote from notes',
      30_000,
      'the new field to be queryable through the gateway',
    );
    const after = (await gatewayProcess()).gateway;
    expect(after.pid).toBe(before.pid);
    expect(after.restarts).toBe(before.restarts);
    await waitFor(() => toolsChanged > 0, 15_000, 'notifications/tools/list_changed');
    const search = await mcp.callTool({ name: 'search-schema', arguments: { query: 'latest note' } });
    expect(JSON.stringify(search.content)).toContain('latestNote');
    await mcp.close();
  });

  it('keeps serving the last good supergraph when an edit breaks composition, and says why', async () => {
    // `me` is auth's field already: a second, non-shareable definition cannot compose.
    writeFileSync(sdlFile, `${LINK}type Query { note: String latestNote: String me: String }\n`);
    const servedBefore = (await gatewayProcess()).composition.served?.hash;
    const failure = await waitFor(
      async () => {
        const { composition } = await gatewayProcess();
        return composition.lastAttempt?.ok === false ? composition : null;
      },
      30_000,
      'the composition failure to be reported',
    );
    expect(failure.lastAttempt?.errors.join('\n')).toMatch(/Query\.me/);
    expect(failure.served?.hash).toBe(servedBefore);
    expect(await queryFields()).toEqual(
      expect.arrayContaining(['note', 'latestNote', 'me', 'user', 'users']),
    );
    // The supergraph did not change: `me` is still auth's (an object, not notes' String).
    const me = await graphql(system.gatewayUrl, '{ me { id } }');
    expect(me.body).toEqual({ data: { me: null } });

    // Fixed again: composes, and notes is served again.
    writeFileSync(sdlFile, `${LINK}type Query { note: String latestNote: String }\n`);
    await waitFor(
      async () =>
        (await graphql(system.gatewayUrl, '{ latestNote }')).body.data?.latestNote ===
        'latestNote from notes',
      30_000,
      'notes to be served again',
    );
  });
});
