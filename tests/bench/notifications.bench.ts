import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNatsBus, openSqliteDatabase, uuidv7 } from '@aiva/shared';
import { bearer, graphql } from '@aiva/shared/testing';
import { io } from 'socket.io-client';
import { startNatsServer } from '../system/helpers/nats-server.js';
import { startSystem } from '../system/helpers/system.js';
import { BENCH_ADMIN, benchAdminToken } from './bench-kit.js';

/**
 * The notifications pipeline measured (`pnpm bench:notifications`), AIVA as `pnpm start` runs it on a private
 * NATS JetStream:
 * 1. events/s through publish → JetStream → the notifications consumer → the in-app store: BENCH_EVENTS
 *    `notification.requested` events (PRODUCT: in the app only, no mail) published by a client of its own,
 *    timed until all are stored;
 * 2. latency from the `sendNotification` mutation (an admin, through the gateway) to the Socket.IO delivery on
 *    the person's client connected through the gateway, BENCH_SENDS sends one after the other: p50, p99.
 */
const EVENTS = Number(process.env.BENCH_EVENTS ?? 5000);
const SENDS = Number(process.env.BENCH_SENDS ?? 300);

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

async function signUp(gatewayUrl: string, email: string, password: string) {
  const result = await graphql<{
    signUp: { accessToken: string; refreshToken: string; user: { id: string } };
  }>(
    gatewayUrl,
    'mutation($input: SignUpInput!) { signUp(input: $input) { accessToken refreshToken user { id } } }',
    {
      input: {
        email,
        password,
        username: email.split('@')[0]?.replace(/[^a-z0-9]/gi, '') ?? 'someone',
        firstName: 'Bench',
        lastName: 'Mark',
      },
    },
  );
  if (!result.body.data) throw new Error(`signUp failed: ${JSON.stringify(result.body.errors)}`);
  return result.body.data.signUp;
}

const nats = await startNatsServer();
const dataDir = mkdtempSync(join(tmpdir(), 'aiva-bench-notifications-'));
const system = await startSystem({
  dataDir,
  env: {
    NATS_URL: nats.url,
    AIVA_ADMIN_EMAILS: BENCH_ADMIN.email,
    AUTH_REQUESTS_PER_ADDRESS: '1000000',
    ACCESS_TOKEN_TTL_SECONDS: '3600',
    LOG_LEVEL: 'warn',
  },
});
try {
  const adminToken = await benchAdminToken(system.gatewayUrl, dataDir);
  const person = await signUp(
    system.gatewayUrl,
    `person-${randomUUID().slice(0, 8)}@example.test`,
    'a long password',
  );
  const db = openSqliteDatabase(join(dataDir, 'notifications.sqlite'), { readonly: true });
  const stored = () =>
    db
      .prepare<[string], number>('SELECT count(*) FROM notifications WHERE user_id = ?')
      .pluck()
      .get(person.user.id) ?? 0;

  // 1. Throughput of the pipeline.
  const publisher = await createNatsBus({ url: nats.url, source: 'bench' });
  await publisher.whenUp(10_000);
  const before = stored();
  const started = performance.now();
  const WINDOW = 256;
  for (let i = 0; i < EVENTS; i += WINDOW) {
    await Promise.all(
      Array.from({ length: Math.min(WINDOW, EVENTS - i) }, (_, k) =>
        publisher.publish({
          id: uuidv7(),
          type: 'aiva.notifications.notification.requested.v1',
          occurredAt: new Date().toISOString(),
          source: 'bench',
          data: {
            userId: person.user.id,
            category: 'product',
            title: `Bench ${i + k}`,
            body: 'A notification of the benchmark.',
            data: null,
            requestedBy: 'bench',
          },
        }),
      ),
    );
  }
  const published = performance.now();
  while (stored() < before + EVENTS) await new Promise((resolve) => setTimeout(resolve, 20));
  const done = performance.now();
  await publisher.close();

  // 2. Latency from the mutation to the live delivery.
  const socket = io(`http://127.0.0.1:${system.ports.gateway}`, {
    path: '/notifications/live',
    transports: ['websocket'],
    auth: { token: person.accessToken },
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  const latencies: number[] = [];
  for (let i = 0; i < SENDS; i++) {
    const title = `Live ${i}`;
    const arrived = new Promise<void>((resolve) => {
      const listener = (notification: { title: string }) => {
        if (notification.title !== title) return;
        socket.off('notification', listener);
        resolve();
      };
      socket.on('notification', listener);
    });
    const sent = performance.now();
    const result = await graphql(
      system.gatewayUrl,
      'mutation($input: SendNotificationInput!) { sendNotification(input: $input) }',
      { input: { userId: person.user.id, category: 'PRODUCT', title, body: 'Live, through the bus.' } },
      bearer(adminToken),
    );
    if (result.body.errors) throw new Error(`sendNotification failed: ${JSON.stringify(result.body.errors)}`);
    await arrived;
    latencies.push(performance.now() - sent);
  }
  socket.disconnect();
  db.close();
  latencies.sort((a, b) => a - b);

  console.log(
    `\n### Notifications (Node ${process.version}, private NATS JetStream, ${new Date().toISOString()})\n`,
  );
  console.log('| figure | value |');
  console.log('| --- | ---: |');
  console.log(
    `| events/s, publish → JetStream → consumer → in-app store (${EVENTS} events) | ${(EVENTS / ((done - started) / 1000)).toFixed(0)} |`,
  );
  console.log(
    `| of which publishing (acknowledged by JetStream), events/s | ${(EVENTS / ((published - started) / 1000)).toFixed(0)} |`,
  );
  console.log(
    `| sendNotification → Socket.IO delivery, p50 (ms, ${SENDS} sends) | ${percentile(latencies, 50).toFixed(1)} |`,
  );
  console.log(
    `| sendNotification → Socket.IO delivery, p99 (ms) | ${percentile(latencies, 99).toFixed(1)} |`,
  );
} finally {
  await system.stop('SIGINT');
  await nats.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
