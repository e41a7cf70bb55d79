import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  ListToolsRequestSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStdioBridge } from '../src/mcp/stdio-bridge.js';

// The stdio bridge in front of a stateless MCP server over real HTTP whose tool list changes (as the gateway's
// does with a new supergraph): the client hears `notifications/tools/list_changed` and lists the new tools.

let tools = ['first-tool'];
let http: HttpServer;
let url: URL;

function serverForOneRequest(): Server {
  const server = new Server(
    { name: 'changing', version: '1.0.0' },
    { capabilities: { tools: { listChanged: true } } },
  );
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: tools.map((name) => ({ name, inputSchema: { type: 'object' as const } })),
  }));
  return server;
}

beforeAll(async () => {
  http = createServer(async (req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const server = serverForOneRequest();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on('close', () => void server.close());
    await server.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  url = new URL(`http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`);
});

afterAll(async () => {
  http.closeAllConnections();
  await new Promise((resolve) => http.close(resolve));
});

describe('stdio bridge', () => {
  it('tells the client when the tool list changed, and forwards what it lists', async () => {
    const [clientSide, bridgeSide] = InMemoryTransport.createLinkedPair();
    const bridge = await startStdioBridge({ url, pollMs: 50, local: bridgeSide, report: () => {} });
    const client = new Client({ name: 'test', version: '1.0.0' });
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      changed++;
    });
    await client.connect(clientSide);
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['first-tool']);
      // Polls before the change see the same list: no notification.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(changed).toBe(0);
      tools = ['first-tool', 'second-tool'];
      for (let i = 0; i < 100 && changed === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(changed).toBe(1);
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['first-tool', 'second-tool']);
    } finally {
      await client.close();
      await bridge.close();
    }
  });
});
