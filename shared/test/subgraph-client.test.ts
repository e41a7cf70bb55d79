import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceRouter } from '../src/discovery/service-router.js';
import { callSubgraph } from '../src/discovery/subgraph-client.js';
import { AivaError } from '../src/errors.js';

// One GraphQL call to another subgraph over real HTTP: the bearer token goes along, the data comes back, and the
// other subgraph's error reaches our caller as that subgraph said it (code, message, plain extensions only).

let server: Server;
let url = '';
const seen: Array<{ authorization: string | undefined; body: { query: string; variables: unknown } }> = [];
/** What the server answers next: a GraphQL body, or a bare HTTP status. */
let answer: { status: number; body?: unknown } = { status: 200, body: { data: { ok: true } } };

beforeAll(async () => {
  server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    seen.push({
      authorization: request.headers.authorization,
      body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
    });
    response.writeHead(answer.status, { 'content-type': 'application/json' });
    response.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const call = () =>
  callSubgraph<{ ok: boolean }>({
    router: new ServiceRouter({ fallback: { media: url } }),
    service: 'media',
    token: 'service-token',
    query: 'query Q($id: ID!) { ok(id: $id) }',
    variables: { id: 'x' },
    retryable: true,
  });

describe('callSubgraph', () => {
  it('sends the query with the bearer token and answers the data', async () => {
    answer = { status: 200, body: { data: { ok: true } } };
    await expect(call()).resolves.toEqual({ ok: true });
    expect(seen.at(-1)).toEqual({
      authorization: 'Bearer service-token',
      body: { query: 'query Q($id: ID!) { ok(id: $id) }', variables: { id: 'x' } },
    });
  });

  it("passes the other subgraph's error on with its code and plain extensions only", async () => {
    answer = {
      status: 200,
      body: {
        data: null,
        errors: [
          {
            message: 'This upload would exceed the storage quota',
            extensions: {
              code: 'BAD_USER_INPUT',
              field: 'size',
              reason: 'QUOTA_EXCEEDED',
              limit: 10,
              used: 9,
              stacktrace: ['at secret.ts:1'],
              internal: { db: 'x' },
            },
          },
        ],
      },
    };
    const error = (await call().catch((e: unknown) => e)) as AivaError;
    expect(error).toBeInstanceOf(AivaError);
    expect(error.message).toBe('This upload would exceed the storage quota');
    expect(error.extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'size',
      reason: 'QUOTA_EXCEEDED',
      limit: 10,
      used: 9,
    });
  });

  it('turns an unknown code into INTERNAL_SERVER_ERROR, and no answer into the service being unavailable', async () => {
    answer = { status: 200, body: { errors: [{ message: 'odd', extensions: { code: 'WEIRD' } }] } };
    await expect(call()).rejects.toMatchObject({ extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    answer = { status: 500 };
    await expect(call()).rejects.toMatchObject({
      message: 'The media service is unavailable',
      extensions: { code: 'INTERNAL_SERVER_ERROR', serviceName: 'media' },
    });
    const nowhere = callSubgraph({
      router: new ServiceRouter({ fallback: {} }),
      service: 'media',
      token: 't',
      query: '{ ok }',
      retryable: false,
    });
    await expect(nowhere).rejects.toMatchObject({ extensions: { serviceName: 'media' } });
  });
});
