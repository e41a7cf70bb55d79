import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, createSubgraphServer, type GraphQLHttpServer } from '@aiva/shared';
import { bearer, createTestTokenIssuer } from '@aiva/shared/testing';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunLog, RunWriter } from '../../src/streams/run-log.js';
import { openSqliteRunLog } from '../../src/streams/sqlite-run-log.js';
import { registerStreamRoute, STREAMS_PATH } from '../../src/streams/sse.js';
import { readSseEvents } from './sse-reader.js';

// The reply stream route on a real subgraph server over real HTTP: the owner reads the run as server-sent events
// while it is written, resumes after the last event id it saw, and nobody else can read it.

const issuer = await createTestTokenIssuer();
const owner = randomUUID();
let dir: string;
let log: RunLog;
let server: GraphQLHttpServer;
let base = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiva-sse-'));
  log = openSqliteRunLog({ file: join(dir, 'runs.sqlite') });
  server = await createSubgraphServer({
    name: 'ai-test',
    logger: createLogger('t', { level: 'silent' }),
    typeDefs: parse('type Query { ping: String }'),
    resolvers: { Query: { ping: () => 'pong' } },
    auth: issuer.verifier,
    configure: (app, { tokenCheck }) => registerStreamRoute(app, { log, tokenCheck }),
  });
  base = await server.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await server?.close();
  await log?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('reply streams', () => {
  it('stream to their owner as they are written, and resume after the last event id', async () => {
    const runId = randomUUID();
    await log.create(runId, owner, 60_000);
    const writer = new RunWriter(log, runId);
    await writer.delta('The ');
    const token = await issuer.token(owner);
    const response = await fetch(`${base}${STREAMS_PATH}/${runId}`, { headers: bearer(token) });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const firstTwo = readSseEvents(response, 2);
    await writer.delta('answer');
    expect((await firstTwo).map((e) => [e.id, e.event, e.data])).toEqual([
      [1, 'delta', { text: 'The ' }],
      [2, 'delta', { text: 'answer' }],
    ]);
    // The client dropped after event 2; meanwhile the reply went on and ended.
    await writer.delta('.');
    await writer.done({ messageId: 'm-1' });
    const resumed = await fetch(`${base}${STREAMS_PATH}/${runId}`, {
      headers: { ...bearer(token), 'last-event-id': '2' },
    });
    expect((await readSseEvents(resumed)).map((e) => [e.id, e.event])).toEqual([
      [3, 'delta'],
      [4, 'done'],
    ]);
  });

  it('are not readable by anyone else, nor without a valid token', async () => {
    const runId = randomUUID();
    await log.create(runId, owner, 60_000);
    const other = await issuer.token(randomUUID());
    expect((await fetch(`${base}${STREAMS_PATH}/${runId}`, { headers: bearer(other) })).status).toBe(404);
    expect((await fetch(`${base}${STREAMS_PATH}/${runId}`)).status).toBe(401);
    expect((await fetch(`${base}${STREAMS_PATH}/${runId}`, { headers: bearer('not-a-token') })).status).toBe(
      401,
    );
    const token = await issuer.token(owner);
    expect((await fetch(`${base}${STREAMS_PATH}/not-a-run`, { headers: bearer(token) })).status).toBe(404);
  });
});
