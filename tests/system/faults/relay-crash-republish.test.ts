import { join } from 'node:path';
import {
  type AivaEvent,
  createEvent,
  createNatsBus,
  durableName,
  type NatsBus,
  openSqliteDatabase,
} from '@aiva/shared';
import { bearer, graphql, waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { consumerCaughtUp, countById, duplicateWindowMs, readStream } from '../helpers/nats-stream.js';
import { type RunningServices, startServices } from '../helpers/services.js';

// Fault: auth's relay published an event and crashed before marking its outbox row; auth comes back after the
// JetStream duplicate window, so the republish is NOT deduplicated by the server: the event is delivered again.
// The consumer (users.email-sync) must not apply it twice. The event here moves a profile's email to X; a later
// one moved it to Y; applied again, the stale event would move it back to X. users records processed event ids
// in its own store, in the transaction of the change (`runOnce`), so the late redelivery does nothing.
//
// The issue says "restart after 3 minutes" (past JetStream's 2-minute window). Three real minutes are too long for
// CI: the duplicate window is a per-stream setting, and the services create the stream with NATS_DUPLICATE_WINDOW_MS
// (default 2 minutes). On this private nats-server the stream is created with a 2-second window, so "after the
// window" is 3 seconds here, and the test checks that the republish really was a second message in the stream.

const WINDOW_MS = 2_000;
const CONSUMER = 'users.email-sync';
const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { accessToken user { id } } }`;
const USER = 'query($id: ID!) { user(id: $id) { id email } }';

let nats: TestNatsServer;
let services: RunningServices;
let bus: NatsBus;
let token = '';
let userId = '';

async function profileEmail(): Promise<string | undefined> {
  const result = await graphql<{ user: { email: string } }>(
    services.gatewayUrl,
    USER,
    { id: userId },
    bearer(token),
  );
  return result.body.data?.user.email;
}

function emailChanged(email: string, previousEmail: string): AivaEvent<'aiva.auth.user.email_changed.v1'> {
  return createEvent('aiva.auth.user.email_changed.v1', 'auth', {
    id: userId,
    email,
    previousEmail,
    changedAt: new Date().toISOString(),
  });
}

beforeAll(async () => {
  nats = await startNatsServer();
  services = await startServices({
    env: {
      NATS_URL: nats.url,
      NATS_DUPLICATE_WINDOW_MS: String(WINDOW_MS),
      // The killed relay's lease must run out before the restarted one may publish (default 30 s).
      OUTBOX_RELAY_LEASE_MS: '2000',
    },
  });
  bus = await createNatsBus({ url: nats.url, source: 'fault-test' });
  await bus.whenUp(10_000);
  const signedUp = await graphql<{ signUp: { accessToken: string; user: { id: string } } }>(
    services.gatewayUrl,
    SIGN_UP,
    {
      input: {
        email: 'a@example.test',
        password: 'a long password',
        username: 'crash',
        firstName: 'R',
        lastName: 'C',
      },
    },
  );
  expect(signedUp.body.errors).toBeUndefined();
  token = signedUp.body.data!.signUp.accessToken;
  userId = signedUp.body.data!.signUp.user.id;
}, 120_000);

afterAll(async () => {
  await bus?.close();
  await services?.stop();
  await nats?.stop();
});

describe('relay crash between publish and mark, restarted after the duplicate window', {
  timeout: 120_000,
}, () => {
  let first: AivaEvent<'aiva.auth.user.email_changed.v1'>;

  it('uses a stream whose duplicate window is the configured one', async () => {
    expect(await duplicateWindowMs(nats.url)).toBe(WINDOW_MS);
  });

  it('applies two email changes in order', async () => {
    // As auth's relay would publish them (same subject, Nats-Msg-Id = event id).
    first = emailChanged('x@example.test', 'a@example.test');
    await bus.publish(first);
    await waitFor(async () => (await profileEmail()) === 'x@example.test', 15_000, 'the first change');
    await bus.publish(emailChanged('y@example.test', 'x@example.test'));
    await waitFor(async () => (await profileEmail()) === 'y@example.test', 15_000, 'the second change');
  });

  it('does nothing with the stale event republished by a relay that crashed before marking it', async () => {
    // The crash: auth dies, its outbox still holds the first event unmarked (published, never marked).
    await services.kill('auth');
    const db = openSqliteDatabase(join(services.dataDir, 'auth.sqlite'));
    try {
      db.prepare('INSERT INTO outbox (id, type, payload, created_at) VALUES (?, ?, ?, ?)').run(
        first.id,
        first.type,
        JSON.stringify(first),
        new Date().toISOString(),
      );
    } finally {
      db.close();
    }
    // "Restart after 3 minutes": past the (shortened) duplicate window.
    await new Promise((resolve) => setTimeout(resolve, WINDOW_MS + 1_000));
    await services.start('auth');

    // The republish was not deduplicated: the event is twice in the stream, and was delivered again.
    await waitFor(
      async () =>
        countById(await readStream(nats.url, { subject: 'aiva.auth.user.email_changed.v1' })).get(
          first.id,
        ) === 2,
      15_000,
      'the republished event in the stream',
    );
    const durable = durableName(CONSUMER, 'aiva.auth.user.email_changed.v1');
    await waitFor(() => consumerCaughtUp(nats.url, durable), 15_000, 'users to handle the redelivery');

    // The effect happened once: the profile keeps the later email, and users wrote one updated event per change.
    expect(await profileEmail()).toBe('y@example.test');
    const updates = (await readStream(nats.url, { subject: 'aiva.users.user.updated.v1' })).filter((e) =>
      (e.event.data.changedFields as string[] | undefined)?.includes('email'),
    );
    expect(updates.map((e) => e.event.data.email)).toEqual(['x@example.test', 'y@example.test']);
  });
});
