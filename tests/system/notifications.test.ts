import { bearer, graphql, waitFor } from '@aiva/shared/testing';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEmailThrough } from '../helpers/sealed-mail.js';
import { decodeQuotedPrintable, type SmtpSink, startSmtpSink } from '../helpers/smtp.js';
import { type RunningSystem, startSystem } from './helpers/system.js';

// The notifications subgraph as `pnpm start` runs it (its own process, registered with the orchestrator), its
// mails going to a real SMTP server process: sign-up sends the welcome mail and shows the in-app notification,
// the reset mail's link resets the password, and in-app notifications reach a Socket.IO client connected through
// the gateway's public port.

const APP_URL = 'https://app.example.test';
const ADMIN_EMAIL = 'notify_admin@example.test';
let smtp: SmtpSink;
let system: RunningSystem;
let base = '';

beforeAll(async () => {
  smtp = await startSmtpSink();
  system = await startSystem({
    env: { SMTP_URL: smtp.url, APP_URL, DELIVERY_RETRY_BASE_MS: '200', AIVA_ADMIN_EMAILS: ADMIN_EMAIL },
  });
  base = `http://127.0.0.1:${system.ports.gateway}`;
}, 120_000);

afterAll(async () => {
  await system?.stop('SIGKILL');
  await smtp?.stop();
});

const SIGN_UP = `mutation SignUp($input: SignUpInput!) {
  signUp(input: $input) { accessToken refreshToken user { id } }
}`;

async function signUp(name: string, password = 'a long password') {
  const email = `${name}@example.test`;
  const result = await graphql<{
    signUp: { accessToken: string; refreshToken: string; user: { id: string } };
  }>(system.gatewayUrl, SIGN_UP, {
    input: { email, password, username: name, firstName: 'Nora', lastName: 'Tify' },
  });
  expect(result.body.errors).toBeUndefined();
  const signed = result.body.data?.signUp;
  if (!signed) throw new Error('no sign-up');
  return {
    email,
    password,
    token: signed.accessToken,
    refreshToken: signed.refreshToken,
    id: signed.user.id,
  };
}

/** The text of a mail (both parts), decoded. */
const textOf = (raw: string) => decodeQuotedPrintable(raw);

/** The `token` of the first link to `path` in a mail. */
function linkToken(raw: string, path: string): string {
  const match = new RegExp(`${APP_URL}${path}\\?token=([A-Za-z0-9_.~%-]+)`).exec(textOf(raw));
  if (!match?.[1]) throw new Error(`no ${path} link in the mail`);
  return decodeURIComponent(match[1]);
}

const MY_NOTIFICATIONS = `{ me { unreadNotificationCount notifications(first: 10) {
  edges { node { id category title readAt } } } } }`;

interface Inbox {
  me: {
    unreadNotificationCount: number;
    notifications: {
      edges: Array<{ node: { id: string; category: string; title: string; readAt: string | null } }>;
    };
  };
}

/** The first notification the socket receives whose title is `title` (a welcome may arrive in between). */
function notificationTitled<T extends { title: string }>(socket: Socket, title: string): Promise<T> {
  return new Promise((resolve) => {
    const listener = (notification: T) => {
      if (notification.title !== title) return;
      socket.off('notification', listener);
      resolve(notification);
    };
    socket.on('notification', listener);
  });
}

function connectLive(token: string, since?: string): Socket {
  return io(base, {
    path: '/notifications/live',
    transports: ['websocket'],
    auth: { token, ...(since ? { since } : {}) },
    reconnection: false,
  });
}

describe('notifications through the gateway', { timeout: 60_000 }, () => {
  it('sends the welcome mail over SMTP and shows the welcome in the app', async () => {
    const person = await signUp('welcome_one');
    const mails = await waitFor(
      () => (smtp.mailsTo(person.email).length > 0 ? smtp.mailsTo(person.email) : undefined),
      30_000,
      'the welcome mail',
    );
    expect(mails).toHaveLength(1);
    const [mail] = mails;
    expect(mail?.headers.subject).toBe('Welcome to AIVA');
    expect(mail?.headers['content-type']).toMatch(/^multipart\/alternative/);
    expect(mail?.raw).toMatch(/Content-Type: text\/plain/);
    expect(mail?.raw).toMatch(/Content-Type: text\/html/);

    const inbox = await graphql<Inbox>(system.gatewayUrl, MY_NOTIFICATIONS, {}, bearer(person.token));
    expect(inbox.body.errors).toBeUndefined();
    expect(inbox.body.data?.me.unreadNotificationCount).toBe(1);
    const [welcome] = inbox.body.data?.me.notifications.edges ?? [];
    expect(welcome?.node).toMatchObject({ category: 'WELCOME', title: 'Welcome to AIVA', readAt: null });

    const read = await graphql<{ markNotificationRead: { readAt: string } }>(
      system.gatewayUrl,
      'mutation($id: ID!) { markNotificationRead(id: $id) { readAt } }',
      { id: welcome?.node.id },
      bearer(person.token),
    );
    expect(read.body.data?.markNotificationRead.readAt).toMatch(/^\d{4}-/);
    const after = await graphql<Inbox>(system.gatewayUrl, MY_NOTIFICATIONS, {}, bearer(person.token));
    expect(after.body.data?.me.unreadNotificationCount).toBe(0);
  });

  it('delivers the welcome on a Socket.IO client connected right after sign-up (live, or caught up by since)', async () => {
    const since = new Date().toISOString();
    const person = await signUp('welcome_live');
    const socket = connectLive(person.token, since);
    try {
      const welcome = await new Promise<{ category: string; title: string }>((resolve, reject) => {
        socket.once('notification', resolve);
        socket.once('connect_error', reject);
      });
      expect(welcome).toMatchObject({ category: 'WELCOME', title: 'Welcome to AIVA' });
    } finally {
      socket.disconnect();
    }
  });

  it("keeps a person's notifications to that person", async () => {
    const owner = await signUp('owner_one');
    const other = await signUp('other_one');
    const result = await graphql(
      system.gatewayUrl,
      'query($id: ID!) { user(id: $id) { id notifications { edges { node { id } } } } }',
      { id: owner.id },
      bearer(other.token),
    );
    expect(result.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('sends the reset mail, whose link resets the password', async () => {
    const person = await signUp('reset_one', 'the old password');
    const asked = await graphql(
      system.gatewayUrl,
      'mutation($email: String!) { requestPasswordReset(email: $email) }',
      { email: person.email },
    );
    expect(asked.body.errors).toBeUndefined();
    const mail = await waitFor(
      () => smtp.mailsTo(person.email).find((m) => /reset/i.test(m.headers.subject ?? '')),
      30_000,
      'the reset mail',
    );
    const token = linkToken(mail.raw, '/reset-password');
    const reset = await graphql(
      system.gatewayUrl,
      'mutation($token: String!, $password: String!) { resetPassword(token: $token, newPassword: $password) }',
      { token, password: 'the new password' },
    );
    expect(reset.body.errors).toBeUndefined();
    const signIn = await graphql<{ signIn: { accessToken: string } }>(
      system.gatewayUrl,
      'mutation($input: SignInInput!) { signIn(input: $input) { accessToken } }',
      { input: { email: person.email, password: 'the new password' } },
    );
    expect(signIn.body.errors).toBeUndefined();
    expect(signIn.body.data?.signIn.accessToken).toBeTruthy();
  });

  it('pushes a new notification live to a Socket.IO client connected through the gateway', async () => {
    const person = await signUp('live_one');
    const socket = connectLive(person.token);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', reject);
      });
      const received = notificationTitled<{ category: string; title: string }>(
        socket,
        'Your email address was changed',
      );
      // Changing the address makes a security notification in the app (and warns the previous address).
      const newEmail = 'live_one_new@example.test';
      const asked = await graphql(
        system.gatewayUrl,
        'mutation($e: String!, $p: String!) { requestEmailChange(newEmail: $e, currentPassword: $p) }',
        { e: newEmail, p: person.password },
        bearer(person.token),
      );
      expect(asked.body.errors).toBeUndefined();
      const mail = await waitFor(() => smtp.mailsTo(newEmail)[0], 30_000, 'the confirmation mail');
      const confirmed = await graphql(
        system.gatewayUrl,
        'mutation($t: String!) { confirmEmailChange(token: $t) }',
        { t: linkToken(mail.raw, '/confirm-email-change') },
        bearer(person.token),
      );
      expect(confirmed.body.errors).toBeUndefined();
      expect(await received).toMatchObject({ category: 'SECURITY', title: 'Your email address was changed' });
      await waitFor(
        () => smtp.mailsTo(person.email).find((m) => /changed/i.test(m.headers.subject ?? '')),
        30_000,
        'the warning to the previous address',
      );
    } finally {
      socket.disconnect();
    }
  });

  it("delivers an admin's sendNotification through the bus, live and in the inbox; others may not send", async () => {
    const signed = await signUp('notify_admin');
    const admin = await verifyEmailThrough(
      system.gatewayUrl,
      system.dataDir,
      { accessToken: signed.token, refreshToken: signed.refreshToken },
      ADMIN_EMAIL,
      30_000,
    );
    const person = await signUp('sent_to_one');
    const socket = connectLive(person.token);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', reject);
      });
      const received = notificationTitled<{ category: string; title: string; data: unknown }>(
        socket,
        'Your report is ready',
      );
      const SEND = 'mutation($input: SendNotificationInput!) { sendNotification(input: $input) }';
      const input = {
        userId: person.id,
        category: 'ACTIVITY',
        title: 'Your report is ready',
        body: 'Open it from the dashboard.',
        data: { reportId: 'r-1' },
      };
      const sent = await graphql<{ sendNotification: string }>(
        system.gatewayUrl,
        SEND,
        { input },
        bearer(admin.accessToken),
      );
      expect(sent.body.errors).toBeUndefined();
      expect(sent.body.data?.sendNotification).toMatch(/^[0-9a-f-]{36}$/);
      expect(await received).toMatchObject({
        category: 'ACTIVITY',
        title: 'Your report is ready',
        data: { reportId: 'r-1' },
      });
      // ACTIVITY goes by mail too, by default, to the address the person signed up with.
      await waitFor(
        () => smtp.mailsTo(person.email).find((m) => m.headers.subject === 'Your report is ready'),
        30_000,
        'the activity mail',
      );

      const byPerson = await graphql(system.gatewayUrl, SEND, { input }, bearer(person.token));
      expect(byPerson.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      const welcome = await graphql(
        system.gatewayUrl,
        SEND,
        { input: { ...input, category: 'WELCOME' } },
        bearer(admin.accessToken),
      );
      expect(welcome.body.errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'category',
      });
    } finally {
      socket.disconnect();
    }
  });

  it('refuses a Socket.IO handshake with a bad token', async () => {
    const socket = connectLive('not.a.token');
    try {
      const error = await new Promise<Error>((resolve, reject) => {
        socket.once('connect_error', resolve);
        socket.once('connect', () => reject(new Error('connected with a bad token')));
      });
      expect(error.message).toBe('UNAUTHENTICATED');
    } finally {
      socket.disconnect();
    }
  });
});
