import { randomUUID } from 'node:crypto';
import { bearer, graphql, waitFor } from '@aiva/shared/testing';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEmailThrough } from '../helpers/sealed-mail.js';
import { type RunningServices, signUpThrough, startServices } from './helpers/services.js';
import { freePort, type Spawned, spawnNode } from './helpers/system.js';

// Two notifications instances on one Redis: a notification stored by whichever instance consumed its event
// reaches the person's sockets on both (the Socket.IO Redis adapter), so clients need no sticky sessions.

const ADMIN = 'scale_admin@example.test';
let services: RunningServices;
let second: Spawned;
let secondBase = '';

beforeAll(async () => {
  services = await startServices({
    env: {
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      AUTH_REDIS_PREFIX: `aiva-test:${randomUUID()}:auth:`,
      AIVA_ADMIN_EMAILS: ADMIN,
    },
  });
  const port = await freePort();
  secondBase = `http://127.0.0.1:${port}`;
  second = spawnNode(['subgraphs/notifications/src/main.ts'], {
    ...services.env.notifications,
    NOTIFICATIONS_PORT: String(port),
  });
  await waitFor(
    async () => (await fetch(`${secondBase}/health`).catch(() => null))?.ok,
    60_000,
    'instance 2',
  );
}, 120_000);

afterAll(async () => {
  second?.child.kill('SIGKILL');
  await second?.exited;
  await services?.stop();
});

function connect(base: string, token: string): Promise<Socket> {
  const socket = io(base, { path: '/notifications/live', transports: ['websocket'], auth: { token } });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

describe('live notifications across instances', { timeout: 120_000 }, () => {
  it('reach the sockets on every instance', async () => {
    const signed = await signUpThrough(services.gatewayUrl, {
      email: ADMIN,
      password: 'a long password',
      username: 'scaleadmin',
      firstName: 'Scale',
      lastName: 'Admin',
    });
    const refresh = await graphql<{ signIn: { refreshToken: string } }>(
      services.gatewayUrl,
      'mutation($input: SignInInput!) { signIn(input: $input) { refreshToken } }',
      { input: { email: ADMIN, password: 'a long password' } },
    );
    const admin = await verifyEmailThrough(
      services.gatewayUrl,
      services.dataDir,
      { accessToken: signed.token, refreshToken: refresh.body.data?.signIn.refreshToken ?? '' },
      ADMIN,
      30_000,
    );
    const person = await signUpThrough(services.gatewayUrl, {
      email: 'scale_person@example.test',
      password: 'a long password',
      username: 'scaleperson',
      firstName: 'Scale',
      lastName: 'Person',
    });
    const sockets = await Promise.all([
      connect(services.base.notifications, person.token),
      connect(secondBase, person.token),
    ]);
    try {
      // The sign-up's welcome may still arrive on a socket (its consumer is independent of this one): each socket
      // is waited on for the notification sent below.
      const received = sockets.map(
        (socket) =>
          new Promise<{ title: string }>((resolve) =>
            socket.on('notification', (notification: { title: string }) => {
              if (notification.title === 'To both') resolve(notification);
            }),
          ),
      );
      const sent = await graphql(
        services.gatewayUrl,
        'mutation($input: SendNotificationInput!) { sendNotification(input: $input) }',
        {
          input: { userId: person.userId, category: 'PRODUCT', title: 'To both', body: 'Wherever you are.' },
        },
        bearer(admin.accessToken),
      );
      expect(sent.body.errors).toBeUndefined();
      expect(await Promise.all(received)).toEqual([
        expect.objectContaining({ title: 'To both' }),
        expect.objectContaining({ title: 'To both' }),
      ]);
    } finally {
      for (const socket of sockets) socket.disconnect();
    }
  });
});
