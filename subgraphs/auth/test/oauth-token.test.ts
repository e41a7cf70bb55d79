import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createMemoryBus,
  loadConfig,
  registryToken,
  serviceCredential,
  serviceCredentialOf,
} from '@aiva/shared';
import { capturingLogger } from '@aiva/shared/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AuthApp, authEnvSchema, createAuthApp } from '../src/index.js';

// POST /oauth/token over real HTTP against auth's app as it is built in production (discovery off).

const SECRET = randomBytes(32).toString('base64url');
const TOKEN_PATH = '/oauth/token';

let dataDir: string;
let app: AuthApp;
let url: string;
const logs = capturingLogger('auth-test');

beforeAll(async () => {
  logs.clear();
  dataDir = mkdtempSync(join(tmpdir(), 'aiva-oauth-token-'));
  app = await createAuthApp({
    config: loadConfig(authEnvSchema, {
      DATA_DIR: dataDir,
      AUTH_PORT: '0',
      LOG_LEVEL: 'debug',
      SERVICE_SECRET: SECRET,
    }),
    logger: logs.logger,
    bus: createMemoryBus(),
    discovery: false,
    subgraphUrls: () => ({ users: 'http://127.0.0.1:9/graphql' }),
  });
  url = await app.listen();
});

afterAll(async () => {
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

beforeEach(() => {
  logs.clear();
});

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const form = 'application/x-www-form-urlencoded';

async function post(
  body: string | Record<string, unknown> | undefined,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string; json: Record<string, unknown> }> {
  const response = await fetch(`${url}${TOKEN_PATH}`, {
    method: 'POST',
    headers: {
      ...(typeof body === 'string' ? { 'content-type': form } : {}),
      ...(body !== undefined && typeof body === 'object' ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: JSON.parse(text) };
}

describe('POST /oauth/token', () => {
  const aiCredential = serviceCredential(SECRET, 'ai');

  it('issues a 300 s service token for HTTP Basic client authentication and a form body', async () => {
    const answer = await post('grant_type=client_credentials', { authorization: basic('ai', aiCredential) });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answer.json).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 300 });
    const viewer = await app.verifier.verify(answer.json.access_token as string);
    expect(viewer).toEqual({
      userId: 'service:ai',
      sessionId: 'service',
      roles: ['service'],
      kind: 'service',
    });
    const [, payload] = (answer.json.access_token as string).split('.');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8'));
    expect(claims.exp - claims.iat).toBe(300);
  });

  it('accepts a JSON body, and client_id / client_secret in the body', async () => {
    const json = await post(
      { grant_type: 'client_credentials' },
      { authorization: basic('ai', aiCredential) },
    );
    expect(json.status).toBe(200);
    const inForm = await post(
      `grant_type=client_credentials&client_id=ai&client_secret=${encodeURIComponent(aiCredential)}`,
    );
    expect(inForm.status).toBe(200);
    const inJson = await post({
      grant_type: 'client_credentials',
      client_id: 'ai',
      client_secret: aiCredential,
    });
    expect(inJson.status).toBe(200);
    expect((await app.verifier.verify(inJson.json.access_token as string)).userId).toBe('service:ai');
  });

  it('issues a token to auth itself too (harmless: auth signs its own anyway)', async () => {
    const answer = await post('grant_type=client_credentials', {
      authorization: basic('auth', serviceCredential(SECRET, 'auth')),
    });
    expect(answer.status).toBe(200);
    expect((await app.verifier.verify(answer.json.access_token as string)).userId).toBe('service:auth');
  });

  it('refuses a wrong credential with 401 invalid_client, a Basic challenge, and nothing of the secret', async () => {
    const wrong = randomBytes(32).toString('base64url');
    for (const secret of [wrong, serviceCredential(SECRET, 'media'), registryToken(SECRET, 'ai'), '']) {
      const answer = await post('grant_type=client_credentials', { authorization: basic('ai', secret) });
      expect(answer.status).toBe(401);
      expect(answer.json.error).toBe('invalid_client');
      expect(answer.headers.get('www-authenticate')).toBe('Basic realm="aiva-services"');
      expect(answer.headers.get('cache-control')).toBe('no-store');
      if (secret) expect(answer.text).not.toContain(secret);
    }
    const log = logs.text();
    expect(log).toContain('service token refused');
    expect(log).toContain('"clientId":"ai"');
    expect(log).not.toContain(wrong);
    expect(log).not.toContain(SECRET);
    expect(log).not.toContain(Buffer.from(`ai:${wrong}`).toString('base64'));
  });

  it("refuses another service's credential and a body secret that is wrong", async () => {
    const media = await post('grant_type=client_credentials', {
      authorization: basic('media', aiCredential),
    });
    expect(media.status).toBe(401);
    const inBody = await post({ grant_type: 'client_credentials', client_id: 'ai', client_secret: 'nope' });
    expect(inBody.status).toBe(401);
    expect(inBody.json.error).toBe('invalid_client');
  });

  it('refuses a request without client authentication (401), or with a malformed one', async () => {
    const cases: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer abc' },
      { authorization: 'Basic !!!' },
      { authorization: `Basic ${Buffer.from('no-colon').toString('base64')}` },
    ];
    for (const headers of cases) {
      const answer = await post('grant_type=client_credentials', headers);
      expect(answer.status).toBe(401);
      expect(answer.json.error).toBe('invalid_client');
      expect(answer.headers.get('www-authenticate')).toBe('Basic realm="aiva-services"');
    }
    // A client_id without its secret.
    expect((await post('grant_type=client_credentials&client_id=ai')).status).toBe(401);
    expect((await post(undefined)).status).toBe(401);
  });

  it('answers an unsupported or missing grant type with 400', async () => {
    const authorization = basic('ai', aiCredential);
    const password = await post('grant_type=password&username=a&password=b', { authorization });
    expect(password.status).toBe(400);
    expect(password.json.error).toBe('unsupported_grant_type');
    expect(password.headers.get('cache-control')).toBe('no-store');
    const missing = await post('scope=x', { authorization });
    expect(missing.status).toBe(400);
    expect(missing.json.error).toBe('invalid_request');
  });

  it('answers malformed requests with 400 invalid_request', async () => {
    const authorization = basic('ai', aiCredential);
    // Two authentication methods, a repeated parameter, a non-string parameter, broken JSON, another content type.
    const both = await post(
      `grant_type=client_credentials&client_id=ai&client_secret=${encodeURIComponent(aiCredential)}`,
      { authorization },
    );
    expect(both.status).toBe(400);
    expect(both.json.error).toBe('invalid_request');
    const repeated = await post('grant_type=client_credentials&grant_type=client_credentials', {
      authorization,
    });
    expect(repeated.json.error).toBe('invalid_request');
    const notString = await post({ grant_type: ['client_credentials'] }, { authorization });
    expect(notString.json.error).toBe('invalid_request');
    const broken = await post('{"grant_type":', { authorization, 'content-type': 'application/json' });
    expect(broken.status).toBe(400);
    expect(broken.json.error).toBe('invalid_request');
    const text = await post('grant_type=client_credentials', { authorization, 'content-type': 'text/plain' });
    expect(text.status).toBe(400);
    expect(text.json.error).toBe('invalid_request');
  });

  it('is not a GET route, and /graphql keeps its own error answers', async () => {
    const get = await fetch(`${url}${TOKEN_PATH}`);
    expect(get.status).toBe(404);
    // The form parser is scoped to the token route: /graphql still answers a form post as before.
    const graphql = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': form },
      body: 'query={__typename}',
    });
    expect(graphql.status).not.toBe(200);
    expect(((await graphql.json()) as { error?: unknown }).error).toBeUndefined();
  });
});

describe('POST /oauth/token without SERVICE_SECRET', () => {
  it("checks credentials derived from the machine's secret file, the one every service on it reads", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aiva-oauth-machine-'));
    const machineApp = await createAuthApp({
      config: loadConfig(authEnvSchema, { DATA_DIR: dir, AUTH_PORT: '0', LOG_LEVEL: 'silent' }),
      bus: createMemoryBus(),
      discovery: false,
      subgraphUrls: () => ({ users: 'http://127.0.0.1:9/graphql' }),
    });
    try {
      const base = await machineApp.listen();
      // What ai computes with no configuration but the same DATA_DIR.
      const credential = await serviceCredentialOf({ DATA_DIR: dir }, 'ai');
      const response = await fetch(`${base}${TOKEN_PATH}`, {
        method: 'POST',
        headers: { 'content-type': form, authorization: basic('ai', credential) },
        body: 'grant_type=client_credentials',
      });
      expect(response.status).toBe(200);
      const { access_token } = (await response.json()) as { access_token: string };
      expect((await machineApp.verifier.verify(access_token)).userId).toBe('service:ai');
      // A credential under SECRET (another machine's) is refused here.
      const other = await fetch(`${base}${TOKEN_PATH}`, {
        method: 'POST',
        headers: { 'content-type': form, authorization: basic('ai', serviceCredential(SECRET, 'ai')) },
        body: 'grant_type=client_credentials',
      });
      expect(other.status).toBe(401);
    } finally {
      await machineApp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
