import helmet from '@fastify/helmet';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HELMET_OPTIONS, registerSecurity } from '../src/server/security.js';

// registerSecurity sets the headers helmet would, worked out once: every response carries exactly what
// @fastify/helmet with the same options puts on it, whatever the route's outcome.

function routes(app: FastifyInstance): void {
  app.get('/ok', async () => ({ ok: true }));
  app.get('/boom', async () => {
    throw new Error('boom');
  });
}

let ours: FastifyInstance;
let theirs: FastifyInstance;

beforeAll(async () => {
  ours = Fastify({ logger: false });
  await registerSecurity(ours, { corsOrigins: [] });
  routes(ours);
  theirs = Fastify({ logger: false });
  await theirs.register(helmet, HELMET_OPTIONS);
  routes(theirs);
  await Promise.all([ours.ready(), theirs.ready()]);
});

afterAll(async () => {
  await Promise.all([ours?.close(), theirs?.close()]);
});

/** The headers of a response but the ones that differ between two answers anyway, or come from CORS. */
function securityHeadersOf(headers: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(headers).filter(
      ([name]) => name !== 'date' && name !== 'vary' && !name.startsWith('access-control-'),
    ),
  );
}

describe('security headers', () => {
  it.each([
    ['a route', '/ok', 200],
    ['an unknown route', '/missing', 404],
    ['a failing route', '/boom', 500],
  ])('are those of @fastify/helmet on %s', async (_what, url, status) => {
    const [a, b] = await Promise.all([ours.inject({ url }), theirs.inject({ url })]);
    expect(a.statusCode).toBe(status);
    expect(b.statusCode).toBe(status);
    expect(securityHeadersOf(a.headers)).toEqual(securityHeadersOf(b.headers));
    expect(a.headers['x-content-type-options']).toBe('nosniff');
    expect(a.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(a.headers['strict-transport-security']).toMatch(/max-age=/);
    expect(a.headers['content-security-policy']).toMatch(/default-src 'self'/);
    expect(a.headers['content-security-policy']).toMatch(/frame-src 'self' https:\/\/sandbox.embed/);
    expect(a.headers['cross-origin-embedder-policy']).toBeUndefined();
  });

  it('are the same on every response', async () => {
    const first = await ours.inject({ url: '/ok' });
    const second = await ours.inject({ url: '/ok' });
    expect(securityHeadersOf(second.headers)).toEqual(securityHeadersOf(first.headers));
  });
});
