import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { createEvent, openSqliteDatabase, type SqliteDatabase } from '@aiva/shared';
import { graphql, waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { countById, readStream } from '../helpers/nats-stream.js';
import { metricValue, type RunningServices, startServices } from '../helpers/services.js';
import { spawnNode } from '../helpers/system.js';

// Fault: a poison row in users' outbox (written there by hand, as a bug or a bad migration would: valid JSON, not
// a valid event). Before, the relay retried it forever and every later event waited behind it. Now the relay
// quarantines it at once (validation failures are permanent), logs it once (ids and the zod path, never data) and
// moves on: later events flow. The row is kept and visible (aiva_outbox_quarantined, `outbox:quarantine list`);
// once repaired, `outbox:quarantine replay <id>` puts it back in line and it is published.

const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { user { id } } }`;
const MARKER = 'poison-data-never-logged';

let nats: TestNatsServer;
let services: RunningServices;
let db: SqliteDatabase;
const poisonId = randomUUID();
let signUps = 0;

async function signUp(): Promise<string> {
  const n = signUps++;
  const result = await graphql<{ signUp: { user: { id: string } } }>(services.gatewayUrl, SIGN_UP, {
    input: {
      email: `poison-${n}@example.test`,
      password: 'a long password',
      username: `poison${n}`,
      firstName: 'Poison',
      lastName: 'Row',
    },
  });
  expect(result.body.errors).toBeUndefined();
  return result.body.data!.signUp.user.id;
}

/** Runs users' quarantine tool (`pnpm --filter @aiva/users outbox:quarantine ...`) with the service's settings. */
async function quarantineTool(
  ...args: string[]
): Promise<{ code: number | null; out: Record<string, unknown> }> {
  const tool = spawnNode(['subgraphs/users/src/outbox-quarantine.ts', ...args], services.env.users);
  const { code } = await tool.exited;
  const text = tool.lines.join('\n');
  return { code, out: code === 0 ? (JSON.parse(text) as Record<string, unknown>) : { text } };
}

beforeAll(async () => {
  nats = await startNatsServer();
  services = await startServices({ env: { NATS_URL: nats.url } });
  db = openSqliteDatabase(join(services.dataDir, 'users.sqlite'));
}, 120_000);

afterAll(async () => {
  db?.close();
  await services?.stop();
  await nats?.stop();
});

describe('a poison outbox row', { timeout: 120_000 }, () => {
  const before: string[] = [];
  const after: string[] = [];

  it('is quarantined while the events written after it still flow', async () => {
    before.push(await signUp());
    const valid = createEvent('aiva.users.user.created.v1', 'users', {
      id: randomUUID(),
      email: 'poison@example.test',
      username: 'poison',
      firstName: MARKER,
      lastName: 'Row',
      displayName: null,
      createdAt: new Date().toISOString(),
    });
    // The poison: the envelope of a created event whose data is missing its email.
    const { email: _missing, ...broken } = valid.data;
    db.prepare('INSERT INTO outbox (id, type, payload, created_at) VALUES (?, ?, ?, ?)').run(
      poisonId,
      valid.type,
      JSON.stringify({ ...valid, id: poisonId, data: broken }),
      new Date().toISOString(),
    );
    for (let i = 0; i < 3; i++) after.push(await signUp());

    await waitFor(
      async () =>
        (await readStream(nats.url, { subject: 'aiva.users.user.created.v1' })).length >=
        before.length + after.length,
      20_000,
      'the later events in the stream',
    );
    const created = await readStream(nats.url, { subject: 'aiva.users.user.created.v1' });
    expect(created.map((e) => e.event.data.id)).toEqual([...before, ...after]);
    expect(countById(created).has(poisonId)).toBe(false);
  });

  it('is reported: a metric, one log line without its data, and the operator tool', async () => {
    await waitFor(
      async () => {
        const metrics = await services.metrics('users');
        return (
          metricValue(metrics, 'aiva_outbox_quarantined') === 1 &&
          metricValue(metrics, 'aiva_outbox_quarantined_total') === 1
        );
      },
      5_000,
      'aiva_outbox_quarantined 1 at users',
    );
    const lines = services.process('users').lines.filter((l) => l.includes('outbox event quarantined'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(poisonId);
    expect(lines[0]).toMatch(/data\.email/);
    expect(services.process('users').lines.join('\n')).not.toContain(MARKER);

    const listed = await quarantineTool('list');
    expect(listed.code).toBe(0);
    expect(listed.out).toMatchObject({
      command: 'list',
      total: 1,
      quarantined: [{ id: poisonId, type: 'aiva.users.user.created.v1', attempts: 1 }],
    });
    expect(JSON.stringify(listed.out)).not.toContain(MARKER);
    // A bare `replay` is refused: it would put every row back by accident.
    expect((await quarantineTool('replay')).code).toBe(64);
  });

  it('is replayable: repaired and replayed, it is published once', async () => {
    const row = db.prepare('SELECT payload FROM outbox WHERE id = ?').get(poisonId) as { payload: string };
    const repaired = JSON.parse(row.payload) as { data: Record<string, unknown> };
    repaired.data.email = 'repaired@example.test';
    db.prepare('UPDATE outbox SET payload = ? WHERE id = ?').run(JSON.stringify(repaired), poisonId);

    const replayed = await quarantineTool('replay', poisonId);
    expect(replayed).toMatchObject({ code: 0, out: { command: 'replay', replayed: 1 } });
    await waitFor(
      async () =>
        countById(await readStream(nats.url, { subject: 'aiva.users.user.created.v1' })).get(poisonId) === 1,
      10_000,
      'the repaired event in the stream',
    );
    await waitFor(
      async () => metricValue(await services.metrics('users'), 'aiva_outbox_quarantined') === 0,
      5_000,
      'the quarantine to be empty',
    );
    // Still flowing afterwards.
    const last = await signUp();
    await waitFor(
      async () =>
        (await readStream(nats.url, { subject: 'aiva.users.user.created.v1' })).some(
          (e) => e.event.data.id === last,
        ),
      10_000,
      'a later event',
    );
  });
});
