import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, loadSealingKeys, uuidv7 } from '@aiva/shared';
import { waitFor } from '@aiva/shared/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type SmtpSink, startSmtpSink } from '../../../tests/helpers/smtp.js';
import {
  createEmailChannel,
  createPushChannel,
  createSmsChannel,
  deliveryFailureKind,
  loadOrCreateVapidKeys,
} from '../src/channels/index.js';
import { DeliveryDispatcher } from '../src/delivery/dispatcher.js';
import { createSenders } from '../src/delivery/senders.js';
import type { DeliveryRecord, NotificationStore } from '../src/store/notification.store.js';
import { openSqliteNotificationStore } from '../src/store/sqlite.js';

// The delivery log worked through against a real SMTP server process: a transient refusal (451) is retried and
// the mail arrives once; a delivery that cannot be rendered fails at once; a delivery held by a worker that died
// is taken over when its hold ends, and sent once.

const logger = createLogger('test', { level: 'silent' });
let dir: string;
let smtp: SmtpSink;
let store: NotificationStore;
let dispatcher: DeliveryDispatcher | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiva-dispatch-'));
  // The first mail is refused with 451, the next ones accepted.
  smtp = await startSmtpSink({ rejectFirst: 1 });
}, 60_000);

afterEach(async () => {
  await dispatcher?.stop();
  dispatcher = undefined;
  await store?.close();
});

afterAll(async () => {
  await smtp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function startDispatcher(options: { leaseMs?: number; retentionMs?: number } = {}) {
  store = openSqliteNotificationStore({ file: join(dir, `${uuidv7()}.sqlite`) });
  const email = createEmailChannel({
    smtpUrl: smtp.url,
    from: 'AIVA <no-reply@aiva.test>',
    mailDir: dir,
    logger,
  });
  const made = new DeliveryDispatcher({
    store,
    send: createSenders({
      email,
      push: createPushChannel({
        vapid: await loadOrCreateVapidKeys(join(dir, 'vapid.json'), 'mailto:ops@aiva.test'),
        subject: 'mailto:ops@aiva.test',
      }),
      sms: createSmsChannel({ logFile: join(dir, 'sms.log'), logger }),
      store,
      sealingKeys: await loadSealingKeys({ file: join(dir, 'sealing.json') }),
      appName: 'AIVA',
      appUrl: 'https://app.aiva.test',
    }),
    classify: deliveryFailureKind,
    maxAttempts: 3,
    retryBaseMs: 50,
    concurrency: 2,
    leaseMs: options.leaseMs ?? 10_000,
    ...(options.retentionMs ? { retentionMs: options.retentionMs } : {}),
    pollMs: 25,
    logger,
  });
  return made;
}

function mail(to: string, template = 'generic'): DeliveryRecord {
  const now = new Date();
  return {
    id: uuidv7(),
    userId: '01890000-0000-7000-8000-000000000001',
    notificationId: null,
    channel: 'email',
    target: to,
    message: { template, values: { title: 'Hello', body: 'A message for you.' } },
    status: 'queued',
    attempts: 0,
    lastError: null,
    nextAttemptAt: now,
    createdAt: now,
    updatedAt: now,
  };
}

async function settled(id: string): Promise<DeliveryRecord> {
  return waitFor(
    async () => {
      const [found] = (await store.deliveries({ userId: '01890000-0000-7000-8000-000000000001' })).filter(
        (d) => d.id === id,
      );
      return found && (found.status === 'sent' || found.status === 'failed') ? found : undefined;
    },
    20_000,
    `delivery ${id} to settle`,
  );
}

describe('delivery dispatcher', () => {
  it('retries a mail the SMTP server refused with 451, and it arrives once', async () => {
    dispatcher = await startDispatcher();
    const delivery = mail('retry@example.test');
    await store.applyEvent('test', uuidv7(), { deliveries: [delivery] });
    dispatcher.start();
    const done = await settled(delivery.id);
    expect(done).toMatchObject({ status: 'sent', attempts: 2, lastError: null });
    expect(smtp.mailsTo('retry@example.test')).toHaveLength(1);
    // The delivery's own Message-ID: were it sent again after a crash, it would be the same message.
    expect(smtp.mailsTo('retry@example.test')[0]?.headers['message-id']).toBe(
      `<aiva-delivery-${delivery.id}@aiva.test>`,
    );
  });

  it('fails a delivery that cannot be rendered at once, without retrying', async () => {
    dispatcher = await startDispatcher();
    const delivery = mail('never@example.test', 'no_such_template');
    await store.applyEvent('test', uuidv7(), { deliveries: [delivery] });
    dispatcher.start();
    const done = await settled(delivery.id);
    expect(done).toMatchObject({ status: 'failed', attempts: 1 });
    expect(done.lastError).toMatch(/unknown template/);
    expect(smtp.mailsTo('never@example.test')).toHaveLength(0);
  });

  it('takes over a delivery held by a worker that died once its hold ends, and sends it once', async () => {
    dispatcher = await startDispatcher();
    const delivery = mail('orphan@example.test');
    await store.applyEvent('test', uuidv7(), { deliveries: [delivery] });
    // A worker claims it for 300 ms and dies before sending.
    const now = new Date();
    expect(await store.claimDueDeliveries(now, new Date(now.getTime() + 300), 10)).toHaveLength(1);
    dispatcher.start();
    const done = await settled(delivery.id);
    expect(done).toMatchObject({ status: 'sent', attempts: 1 });
    expect(smtp.mailsTo('orphan@example.test')).toHaveLength(1);
  });

  it('purges sent deliveries past the retention from the log', async () => {
    dispatcher = await startDispatcher({ retentionMs: 60_000 });
    const old = mail('old@example.test');
    await store.applyEvent('test', uuidv7(), { deliveries: [old] });
    const longAgo = new Date(Date.now() - 120_000);
    await store.finishDelivery(
      old.id,
      { status: 'sent', attempts: 1, lastError: null, nextAttemptAt: longAgo },
      longAgo,
    );
    const user = '01890000-0000-7000-8000-000000000001';
    expect(await store.deliveries({ userId: user })).toHaveLength(1);
    dispatcher.start();
    await waitFor(async () => (await store.deliveries({ userId: user })).length === 0, 10_000, 'the purge');
  });

  it("waits for the person's address when a mail was queued before it was known, then sends it there", async () => {
    dispatcher = await startDispatcher();
    const early = { ...mail(''), target: '' };
    await store.applyEvent('test', uuidv7(), { deliveries: [early] });
    const user = '01890000-0000-7000-8000-000000000001';
    // One attempt by hand: no address yet, so it is retried, not failed.
    expect(await dispatcher.tick()).toBe(1);
    const [afterFirst] = (await store.deliveries({ userId: user })).filter((d) => d.id === early.id);
    expect(afterFirst).toMatchObject({ status: 'retrying', attempts: 1 });
    expect(afterFirst?.lastError).toMatch(/no address known/);
    // The sign-up's event arrives: the address is known now.
    await store.applyEvent('test', uuidv7(), {
      deliveries: [],
      contact: { userId: user, email: 'late@example.test', at: new Date() },
    });
    dispatcher.start();
    const done = await settled(early.id);
    expect(done).toMatchObject({ status: 'sent', attempts: 2 });
    expect(smtp.mailsTo('late@example.test')).toHaveLength(1);
  });
});
