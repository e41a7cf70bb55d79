import { waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SmtpSink, startSmtpSink } from '../../helpers/smtp.js';
import { startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { type RunningServices, signUpThrough, startServices } from '../helpers/services.js';

// Faults on the way from a sign-up to its welcome mail (auth's outbox → NATS JetStream → notifications'
// durable consumer → its delivery log → a real SMTP server process): NATS killed while people sign up, and the
// notifications process killed while it works through a burst. Every mail arrives, none twice.

let nats: TestNatsServer;
let smtp: SmtpSink;
let services: RunningServices;
let people = 0;

async function signUp(prefix: string): Promise<string> {
  const n = people++;
  const email = `${prefix}-${n}@example.test`;
  await signUpThrough(services.gatewayUrl, {
    email,
    password: 'a long password',
    username: `${prefix.replace(/-/g, '')}${n}`,
    firstName: 'Mail',
    lastName: 'Fault',
  });
  return email;
}

/**
 * Waits until every address has its welcome mail; then no address may have two. Two copies of one message
 * (one `Message-ID`) count once: SMTP delivery is at least once, and a process killed after the server accepted
 * a mail but before it recorded that sends the same delivery again, as the same message, which mail systems
 * collapse. Two different messages would be two welcomes.
 */
async function everyWelcomeOnce(emails: readonly string[], timeoutMs: number): Promise<void> {
  const welcomes = (email: string) =>
    new Set(
      smtp
        .mailsTo(email)
        .filter((m) => m.headers.subject === 'Welcome to AIVA')
        .map((m) => m.headers['message-id']),
    ).size;
  await waitFor(() => emails.every((email) => welcomes(email) >= 1), timeoutMs, 'every welcome mail');
  // Deliveries still in flight would show up now.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  expect(emails.map(welcomes)).toEqual(emails.map(() => 1));
}

beforeAll(async () => {
  nats = await startNatsServer();
  smtp = await startSmtpSink();
  services = await startServices({
    env: {
      NATS_URL: nats.url,
      NATS_CONNECT_TIMEOUT_MS: '500',
      NATS_PUBLISH_TIMEOUT_MS: '1000',
      SMTP_URL: smtp.url,
      AUTH_REQUESTS_PER_ADDRESS: '100000',
    },
  });
}, 120_000);

afterAll(async () => {
  await services?.stop();
  await smtp?.stop();
  await nats?.stop();
});

describe('welcome mails under faults', { timeout: 180_000 }, () => {
  it('arrive after NATS comes back, each once, when NATS was down while people signed up', async () => {
    const before = [await signUp('nats-before')];
    await nats.stop();
    const during: string[] = [];
    for (let i = 0; i < 5; i++) during.push(await signUp('nats-down'));
    // Nothing can have gone out: the events wait in auth's outbox.
    expect(during.flatMap((email) => smtp.mailsTo(email))).toEqual([]);
    await nats.start();
    await everyWelcomeOnce([...before, ...during], 60_000);
  });

  it('arrive once each when the notifications process is killed in the middle of a burst', async () => {
    const burst: string[] = [];
    for (let i = 0; i < 15; i++) burst.push(await signUp('kill-burst'));
    // Killed as soon as the first mails of the burst arrived: the rest are in the stream or the delivery log.
    await waitFor(() => burst.some((email) => smtp.mailsTo(email).length > 0), 60_000, 'the first mails');
    await services.kill('notifications');
    await services.start('notifications');
    await everyWelcomeOnce(burst, 90_000);
  });
});
