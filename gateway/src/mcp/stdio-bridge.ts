import { createHash } from 'node:crypto';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

export interface StdioBridgeOptions {
  /** The gateway's MCP endpoint, e.g. `http://127.0.0.1:3000/mcp`. */
  url: URL;
  /** An access token from auth (AIVA_TOKEN): the caller every tool call runs as. */
  token?: string | undefined;
  /** How often the tool list is compared, to tell the client when it changed (ms). */
  pollMs: number;
  /** The client side (default: this process's stdin/stdout). */
  local?: Transport;
  /** Where the bridge reports what it cannot hand on (default: stderr; stdout belongs to the protocol). */
  report?: (message: string) => void;
}

const POLL_ID_PREFIX = 'aiva-bridge-poll-';

/**
 * MCP over stdio for desktop clients (`pnpm mcp`, `aiva-mcp`): every message of the client goes to the gateway's
 * `/mcp` over HTTP with the token, every answer comes back, so stdio clients see exactly what HTTP clients see
 * (tools, discovery policy, limits, identity). The gateway answers statelessly and cannot push; the bridge asks
 * for the tool list every `pollMs` once the client is initialised and sends `notifications/tools/list_changed`
 * when it changed (a new supergraph, new stored operations).
 */
export async function startStdioBridge(options: StdioBridgeOptions): Promise<{ close(): Promise<void> }> {
  const report = options.report ?? ((message: string) => process.stderr.write(`${message}\n`));
  const local = options.local ?? new StdioServerTransport();
  const remote = new StreamableHTTPClientTransport(options.url, {
    requestInit: options.token ? { headers: { authorization: `Bearer ${options.token}` } } : {},
  });
  let initializeId: string | number | undefined;
  let ready = false;
  let lastTools: string | undefined;
  let polls = 0;
  let timer: NodeJS.Timeout | undefined;

  const poll = async () => {
    if (!ready) return;
    await remote
      .send({ jsonrpc: '2.0', id: `${POLL_ID_PREFIX}${++polls}`, method: 'tools/list', params: {} })
      .catch((error: unknown) => report(`tool list not refreshed: ${(error as Error).message}`));
  };

  remote.onmessage = (message: JSONRPCMessage) => {
    const id = 'id' in message ? message.id : undefined;
    if (typeof id === 'string' && id.startsWith(POLL_ID_PREFIX)) {
      if ('result' in message) {
        const hash = createHash('sha256').update(JSON.stringify(message.result)).digest('hex');
        if (lastTools !== undefined && hash !== lastTools) {
          void local.send({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
        }
        lastTools = hash;
      }
      return;
    }
    if (id !== undefined && id === initializeId && 'result' in message) {
      const version = (message.result as { protocolVersion?: string }).protocolVersion;
      if (version) remote.setProtocolVersion(version);
    }
    void local.send(message);
  };
  remote.onerror = (error) => report(`gateway: ${error.message}`);

  local.onmessage = (message: JSONRPCMessage) => {
    if ('method' in message && message.method === 'initialize' && 'id' in message) initializeId = message.id;
    if ('method' in message && message.method === 'notifications/initialized') {
      ready = true;
      void poll();
    }
    remote.send(message).catch((error: unknown) => {
      // A request that could not reach the gateway is answered, so the client does not wait forever.
      if ('id' in message && 'method' in message) {
        void local.send({
          jsonrpc: '2.0',
          id: message.id,
          error: { code: -32603, message: `The AIVA gateway cannot be reached: ${(error as Error).message}` },
        });
      } else report(`not delivered: ${(error as Error).message}`);
    });
  };
  local.onclose = () => {
    clearInterval(timer);
    void remote.close();
  };

  await remote.start();
  await local.start();
  timer = setInterval(() => void poll(), options.pollMs);
  timer.unref();
  return {
    async close() {
      clearInterval(timer);
      await Promise.all([local.close(), remote.close()]);
    },
  };
}
