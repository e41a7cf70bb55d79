import { createGatewayApp, type GatewayApp, gatewayEnvSchema, readSupergraph } from '@aiva/gateway';
import { loadConfig } from '@aiva/shared';
import { bearer, graphql } from '@aiva/shared/testing';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessStack, startInProcessStack } from '../helpers/in-process-stack.js';
import { silentLogger } from '../helpers/stack.js';
import { ROOT } from '../system/helpers/system.js';

// The MCP server on the gateway, used by the SDK's own client over Streamable HTTP and over stdio (the bridge
// process), as a signed-up person and anonymously, under the mutation policies.

let stack: InProcessStack;
let explicit: GatewayApp;
let explicitUrl = '';
let second: GatewayApp;
let secondUrl = '';
let person: { token: string; id: string };
const clients: Client[] = [];

async function extraGateway(env: Record<string, string>): Promise<{ app: GatewayApp; base: string }> {
  const app = await createGatewayApp({
    config: loadConfig(gatewayEnvSchema, {
      DATA_DIR: stack.dataDir,
      LOG_LEVEL: 'silent',
      GATEWAY_PORT: '0',
      AUTH_JWKS_URL: `${stack.authUrl}/.well-known/jwks.json`,
      ...env,
    }),
    logger: silentLogger,
    supergraphSdl: readSupergraph(),
    subgraphUrls: {
      auth: `${stack.authUrl}/graphql`,
      users: stack.usersUrl,
      notifications: stack.notificationsUrl,
    },
    discovery: false,
  });
  return { app, base: await app.listen() };
}

async function connect(base: string | string[], token?: string): Promise<Client> {
  const bases = Array.isArray(base) ? base : [base];
  let turn = 0;
  const transport = new StreamableHTTPClientTransport(new URL('/mcp', bases[0]), {
    requestInit: token ? { headers: { authorization: `Bearer ${token}` } } : {},
    // Each request to the next gateway instance: no session sticks to one.
    fetch: (url, init) => {
      const target = new URL(String(url));
      const next = new URL(bases[turn++ % bases.length] ?? '');
      target.host = next.host;
      return fetch(target, init);
    },
  });
  const client = new Client({ name: 'aiva-test', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

const textOf = (result: CallToolResult) =>
  result.content.map((part) => (part.type === 'text' ? part.text : '')).join('\n');

beforeAll(async () => {
  stack = await startInProcessStack({ env: { MCP_MUTATIONS: 'none' } });
  const signed = await graphql<{ signUp: { accessToken: string; user: { id: string } } }>(
    stack.gatewayUrl,
    'mutation($input: SignUpInput!) { signUp(input: $input) { accessToken user { id } } }',
    {
      input: {
        email: 'mcp_person@example.test',
        password: 'a long password',
        username: 'mcpperson',
        firstName: 'Model',
        lastName: 'Context',
      },
    },
  );
  const data = signed.body.data?.signUp;
  if (!data) throw new Error(`sign-up failed: ${JSON.stringify(signed.body.errors)}`);
  person = { token: data.accessToken, id: data.user.id };
  ({ app: explicit, base: explicitUrl } = await extraGateway({ MCP_MUTATIONS: 'explicit' }));
  ({ app: second, base: secondUrl } = await extraGateway({ MCP_MUTATIONS: 'none' }));
}, 60_000);

afterAll(async () => {
  for (const client of clients) await client.close().catch(() => {});
  await explicit?.close();
  await second?.close();
  await stack?.stop();
});

const gatewayBase = () => stack.gatewayUrl.replace(/\/graphql$/, '');

describe('MCP over Streamable HTTP', () => {
  it('lists the built-in tools and the stored operations, with schemas strict validators accept', async () => {
    const client = await connect(gatewayBase());
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['search-schema', 'introspect', 'validate', 'execute']));
    expect(names).toEqual(expect.arrayContaining(['my-notifications', 'users', 'me']));
    // MCP_MUTATIONS=none: no mutation tools.
    expect(tools.filter((t) => t.annotations?.destructiveHint && t.name !== 'execute')).toEqual([]);
    const ajv = new Ajv({ strict: true });
    for (const tool of tools as Tool[]) {
      expect(() => ajv.compile(tool.inputSchema), tool.name).not.toThrow();
      if (tool.outputSchema) expect(() => ajv.compile(tool.outputSchema as object), tool.name).not.toThrow();
      expect(JSON.stringify(tool.inputSchema)).not.toContain('$schema');
    }
  });

  it('finds a mutation by a word of its description, and introspects a type', async () => {
    const client = await connect(gatewayBase());
    const found = (await client.callTool({
      name: 'search-schema',
      arguments: { query: 'reset password' },
    })) as CallToolResult;
    expect(textOf(found)).toContain('requestPasswordReset');
    expect(textOf(found)).toContain('path: Mutation.requestPasswordReset');
    const user = (await client.callTool({
      name: 'introspect',
      arguments: { type: 'User', depth: 1 },
    })) as CallToolResult;
    expect(user.isError).toBeFalsy();
    expect(textOf(user)).toMatch(/type User/);
    expect(textOf(user)).toMatch(/unreadNotificationCount: Int!/);
  });

  it('validates an operation, answering errors with their locations', async () => {
    const client = await connect(gatewayBase());
    const bad = (await client.callTool({
      name: 'validate',
      arguments: { operation: '{ me {\n  id\n  nope\n} }' },
    })) as CallToolResult;
    expect(bad.isError).toBe(true);
    expect(textOf(bad)).toMatch(/Cannot query field "nope" on type "User".*\(line 3, column 3\)/);
  });

  it('executes a query as the signed-in person, and anonymously as an anonymous client', async () => {
    const signedIn = await connect(gatewayBase(), person.token);
    const me = (await signedIn.callTool({
      name: 'execute',
      arguments: { operation: '{ me { id } }' },
    })) as CallToolResult;
    expect(JSON.parse(textOf(me))).toEqual({ me: { id: person.id } });
    const tool = (await signedIn.callTool({
      name: 'my-notifications',
      arguments: { first: 5 },
    })) as CallToolResult;
    expect(tool.isError).toBeFalsy();
    expect(tool.structuredContent).toMatchObject({ me: { id: person.id } });

    const anonymous = await connect(gatewayBase());
    const none = (await anonymous.callTool({
      name: 'execute',
      arguments: { operation: '{ me { id } }' },
    })) as CallToolResult;
    expect(JSON.parse(textOf(none))).toEqual({ me: null });
  });

  it('answers a failing operation as a tool error with its messages', async () => {
    const client = await connect(gatewayBase(), person.token);
    const result = (await client.callTool({
      name: 'execute',
      arguments: { operation: '{ users(first: 5) { edges { node { id } } } }' },
    })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/FORBIDDEN/);
  });

  it('refuses mutations under MCP_MUTATIONS=none, and runs a stored one under explicit', async () => {
    const none = await connect(gatewayBase(), person.token);
    const refused = (await none.callTool({
      name: 'execute',
      arguments: { operation: 'mutation { markAllNotificationsRead }' },
    })) as CallToolResult;
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/MCP_MUTATIONS=none/);
    await expect(none.callTool({ name: 'mark-all-notifications-read', arguments: {} })).rejects.toThrow(
      /Unknown tool/,
    );

    const allowed = await connect(explicitUrl, person.token);
    const { tools } = await allowed.listTools();
    const tool = tools.find((t) => t.name === 'mark-all-notifications-read');
    expect(tool?.annotations).toMatchObject({ destructiveHint: true, readOnlyHint: false });
    const ran = (await allowed.callTool({
      name: 'mark-all-notifications-read',
      arguments: {},
    })) as CallToolResult;
    expect(ran.isError).toBeFalsy();
    expect(ran.structuredContent).toEqual({ markAllNotificationsRead: expect.any(Number) });
    // explicit: still not through execute.
    const viaExecute = (await allowed.callTool({
      name: 'execute',
      arguments: { operation: 'mutation { markAllNotificationsRead }' },
    })) as CallToolResult;
    expect(viaExecute.isError).toBe(true);
  });

  it('reads the schema resource and a type through the template', async () => {
    const client = await connect(gatewayBase());
    const schema = await client.readResource({ uri: 'supergraph://schema' });
    expect(schema.contents[0]).toMatchObject({ mimeType: 'application/graphql' });
    expect(String((schema.contents[0] as { text: string }).text)).toMatch(/type Query/);
    const type = await client.readResource({ uri: 'supergraph://type/Notification' });
    expect(String((type.contents[0] as { text: string }).text)).toMatch(/type Notification/);
    const completion = await client.complete({
      ref: { type: 'ref/resource', uri: 'supergraph://type/{name}' },
      argument: { name: 'name', value: 'Notif' },
    });
    expect(completion.completion.values).toEqual(
      expect.arrayContaining(['Notification', 'NotificationConnection']),
    );
  });

  it('works with requests alternating between two gateway instances (stateless, no sticky session)', async () => {
    const client = await connect([gatewayBase(), secondUrl], person.token);
    for (let i = 0; i < 3; i++) {
      const me = (await client.callTool({
        name: 'execute',
        arguments: { operation: '{ me { id } }' },
      })) as CallToolResult;
      expect(JSON.parse(textOf(me))).toEqual({ me: { id: person.id } });
    }
  });

  it('refuses a foreign Origin, and a bad token with WWW-Authenticate naming the resource metadata', async () => {
    const initialize = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    });
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const foreign = await fetch(`${gatewayBase()}/mcp`, {
      method: 'POST',
      headers: { ...headers, origin: 'https://evil.example' },
      body: initialize,
    });
    expect(foreign.status).toBe(403);
    const badToken = await fetch(`${gatewayBase()}/mcp`, {
      method: 'POST',
      headers: { ...headers, authorization: 'Bearer not.a.token' },
      body: initialize,
    });
    expect(badToken.status).toBe(401);
    const challenge = badToken.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(
      /^Bearer resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource"$/,
    );
    const metadata = await (await fetch(challenge.replace(/^.*resource_metadata="([^"]+)".*$/, '$1'))).json();
    expect(metadata).toMatchObject({
      resource: `${gatewayBase()}/mcp`,
      bearer_methods_supported: ['header'],
    });
  });
});

describe('MCP policies', () => {
  it('offers no schema discovery where /graphql offers no introspection', async () => {
    const closed = await extraGateway({ GRAPHQL_INTROSPECTION: 'false' });
    try {
      const client = await connect(closed.base, person.token);
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).not.toContain('search-schema');
      expect(names).not.toContain('introspect');
      expect(names).toEqual(expect.arrayContaining(['execute', 'my-notifications']));
      await expect(client.readResource({ uri: 'supergraph://schema' })).rejects.toThrow();
    } finally {
      await closed.app.close();
    }
  });

  it("applies the gateway's operation limits to execute, and cuts long results with a note", async () => {
    const bounded = await extraGateway({ GRAPHQL_MAX_DEPTH: '2', MCP_MAX_RESULT_CHARS: '40' });
    try {
      const client = await connect(bounded.base, person.token);
      const deep = (await client.callTool({
        name: 'execute',
        arguments: { operation: '{ me { notifications { edges { node { id } } } } }' },
      })) as CallToolResult;
      expect(deep.isError).toBe(true);
      expect(textOf(deep)).toMatch(/depth/i);
      const long = (await client.callTool({
        name: 'execute',
        arguments: { operation: '{ me { id email username } }' },
      })) as CallToolResult;
      expect(long.isError).toBeFalsy();
      expect(textOf(long)).toMatch(/… cut here\. The result is \d+ characters, more than the 40/);
      const tool = (await client.callTool({ name: 'me', arguments: {} })) as CallToolResult;
      expect(tool.isError).toBe(true);
      expect(textOf(tool)).toMatch(/more than the 40 this server answers/);
    } finally {
      await bounded.app.close();
    }
  });

  it('runs a mutation through execute under MCP_MUTATIONS=all', async () => {
    const open = await extraGateway({ MCP_MUTATIONS: 'all' });
    try {
      const client = await connect(open.base, person.token);
      const ran = (await client.callTool({
        name: 'execute',
        arguments: { operation: 'mutation { markAllNotificationsRead }' },
      })) as CallToolResult;
      expect(ran.isError).toBeFalsy();
      expect(JSON.parse(textOf(ran))).toEqual({ markAllNotificationsRead: expect.any(Number) });
    } finally {
      await open.app.close();
    }
  });

  it('refuses a protocol version it does not speak', async () => {
    const response = await fetch(`${gatewayBase()}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '1999-01-01',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(response.status).toBe(400);
  });
});

describe('MCP over stdio (the aiva-mcp bridge process)', () => {
  it('lists tools and runs a query as AIVA_TOKEN', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ['--conditions=aiva-source', '--import', 'tsx', 'gateway/src/mcp/stdio-main.ts'],
      cwd: ROOT,
      env: { ...process.env, AIVA_GATEWAY_URL: gatewayBase(), AIVA_TOKEN: person.token } as Record<
        string,
        string
      >,
      stderr: 'pipe',
    });
    const client = new Client({ name: 'aiva-stdio-test', version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(
      expect.arrayContaining(['search-schema', 'execute', 'my-notifications']),
    );
    const me = (await client.callTool({
      name: 'execute',
      arguments: { operation: '{ me { id } }' },
    })) as CallToolResult;
    expect(JSON.parse(textOf(me))).toEqual({ me: { id: person.id } });
    await client.ping();
  });
});

describe('bearer tokens through MCP', () => {
  it('are checked as /graphql checks them: a token of an ended session is refused', async () => {
    const signed = await graphql<{ signIn: { accessToken: string } }>(
      stack.gatewayUrl,
      'mutation($input: SignInInput!) { signIn(input: $input) { accessToken } }',
      { input: { email: 'mcp_person@example.test', password: 'a long password' } },
    );
    const token = signed.body.data?.signIn.accessToken ?? '';
    await graphql(stack.gatewayUrl, 'mutation { signOut }', {}, bearer(token));
    const response = await fetch(`${gatewayBase()}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(response.status).toBe(401);
  });
});
