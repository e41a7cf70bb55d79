import { registryToken } from '@aiva/shared';
import { createTestTokenIssuer, waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { freePort, type RunningSystem, type Spawned, spawnNode, startSystem } from './helpers/system.js';

// Public routes a service declares when it registers are served on the gateway's port (one origin for
// clients): streamed request and response bodies, server-sent events and WebSockets, with the same token check
// and rate limit as /graphql. The service is a real process registering with the real orchestrator.

const SECRET = 'a-registry-secret-for-the-routes-test-0123456789';
let system: RunningSystem;
let files: Spawned;
let filesPort = 0;
let base = '';
let token = '';

beforeAll(async () => {
  // Development mode: the orchestrator composes the files subgraph in (it is not in the committed supergraph).
  system = await startSystem({ args: ['dev'], env: { REGISTRY_SECRET: SECRET, RATE_LIMIT_MAX: '40' } });
  base = `http://127.0.0.1:${system.ports.gateway}`;
  filesPort = await freePort();
  files = spawnNode(['tests/system/fixtures/files-service.ts'], {
    ...system.env,
    FILES_PORT: String(filesPort),
    ORCHESTRATOR_URL: system.orchestratorUrl,
    REGISTRY_TOKEN: registryToken(SECRET, 'files'),
  });
  await waitFor(
    async () => (await system.routing()).routes.some((r) => r.prefix === '/files'),
    60_000,
    'the /files route to be in the routing table',
  );
  // A real access token from auth (the gateway verifies it against auth's JWKS).
  const signedUp = (await (
    await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query:
          'mutation { signUp(input: { email: "routes@example.test", password: "a long password", username: "routes", firstName: "R", lastName: "S" }) { accessToken } }',
      }),
    })
  ).json()) as { data: { signUp: { accessToken: string } } };
  token = signedUp.data.signUp.accessToken;
}, 120_000);

afterAll(async () => {
  files?.child.kill('SIGKILL');
  await Promise.all([files?.exited, system?.stop('SIGKILL')]);
});

describe('service routes through the gateway', () => {
  it('streams a request body to the service and its answer back', async () => {
    const payload = Buffer.alloc(3 * 1024 * 1024, 'aiva');
    const response = await fetch(`${base}/files/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${token}` },
      body: payload,
    });
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(payload)).toBe(true);
  });

  it('forwards the caller’s token and the address the gateway determined, never a client’s X-Forwarded-For', async () => {
    const response = await fetch(`${base}/files/whoami`, {
      headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': '203.0.113.9' },
    });
    expect(await response.json()).toEqual({
      authorization: `Bearer ${token}`,
      forwardedFor: '127.0.0.1',
      port: filesPort,
    });
  });

  it('streams server-sent events as they come', async () => {
    const response = await fetch(`${base}/files/events`);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    // Not buffered by the gateway: the first event arrives alone, before the stream has ended.
    const first = await reader.read();
    expect(decoder.decode(first.value)).toBe('id: 1\ndata: tick 1\n\n');
    let rest = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
      rest += decoder.decode(chunk.value);
    expect(rest).toBe('id: 2\ndata: tick 2\n\nid: 3\ndata: tick 3\n\n');
  });

  it('forwards WebSockets, with the Authorization header', async () => {
    const socket = new WebSocket(`ws://127.0.0.1:${system.ports.gateway}/files/socket`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const messages: string[] = [];
    socket.on('message', (data) => messages.push(data.toString()));
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    await waitFor(() => messages.length === 1, 5_000, 'the greeting');
    socket.send('hello');
    await waitFor(() => messages.length === 2, 5_000, 'the echo');
    socket.close();
    expect(messages).toEqual([JSON.stringify({ authorization: `Bearer ${token}` }), 'echo: hello']);
  });

  it('refuses a bad access token with 401 before the service is called', async () => {
    const issuer = await createTestTokenIssuer();
    const response = await fetch(`${base}/files/whoami`, {
      headers: { authorization: `Bearer ${await issuer.token('01890000-0000-7000-8000-000000000001')}` },
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] });
    const socket = new WebSocket(`ws://127.0.0.1:${system.ports.gateway}/files/socket`, {
      headers: { authorization: 'Bearer not.a.token' },
    });
    const status = await new Promise<number | undefined>((resolve) => {
      socket.once('unexpected-response', (_request, res) => resolve(res.statusCode));
      socket.once('open', () => resolve(undefined));
    });
    expect(status).toBe(401);
  });

  it('answers a path no service declared with 404, also once the last instance of the declaring service is gone', async () => {
    const unknown = await fetch(`${base}/nothing/here`);
    expect(unknown.status).toBe(404);
    files.child.kill('SIGKILL');
    await files.exited;
    await waitFor(
      async () => !(await system.routing()).routes.some((r) => r.prefix === '/files'),
      15_000,
      'the route to leave the table with its last instance',
    );
    expect((await fetch(`${base}/files/whoami`)).status).toBe(404);
  });

  it('counts route requests in the per-client rate limit', async () => {
    let limited: Response | undefined;
    for (let i = 0; i < 50 && !limited; i++) {
      const response = await fetch(`${base}/.well-known/jwks.json`);
      if (response.status === 429) limited = response;
    }
    expect(limited?.status).toBe(429);
    expect(await limited?.json()).toMatchObject({ errors: [{ extensions: { code: 'RATE_LIMITED' } }] });
  });
});
