import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AivaEvent,
  createMemoryBus,
  createNatsBus,
  createSqliteBus,
  type EventBus,
  loadSealingKeys,
  type NatsBus,
  openSealed,
  openSqliteDatabase,
  type SqliteBus,
} from '@aiva/shared';
import { describeInfra } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessStack, startInProcessStack } from '../helpers/in-process-stack.js';
import { readMailToken, verifyEmailThrough } from '../helpers/sealed-mail.js';
import { accountKit, codeOf, MAIL_EVENTS, Mailbox, PASSWORD, waitForValue } from '../helpers/security-kit.js';

// Issue #7, sealed secrets: no single-use secret (reset, verification, email-change token) is stored or published
// in plaintext. Events carry `sealed:v1:<kid>:<nonce>:<ciphertext+tag>` (AES-256-GCM, key from EVENT_SEALING_KEYS
// or `<DATA_DIR>/event-sealing-keys.json`, mode 0600); published outbox rows are deleted; the tables, the
// SQLite event log and the NATS stream hold only sealed values.

const REQUEST_RESET = 'mutation($e: String!) { requestPasswordReset(email: $e) }';
const RESET = 'mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }';
const TOKEN_EVENTS = new Set<string>(MAIL_EVENTS);

/** Every SQLite file of a data directory, with its WAL: the bytes anything could read from the disk. */
function diskBytes(dataDir: string): string {
  return ['auth.sqlite', 'users.sqlite', 'events.sqlite', 'cache.sqlite']
    .flatMap((name) => [join(dataDir, name), join(dataDir, `${name}-wal`)])
    .filter((file) => existsSync(file))
    .map((file) => readFileSync(file).toString('latin1'))
    .join('\n');
}

function outboxRows(dataDir: string, file: string): Array<{ id: string; type: string; payload: string }> {
  const db = openSqliteDatabase(join(dataDir, file), { readonly: true });
  try {
    return db
      .prepare<[], { id: string; type: string; payload: string }>('SELECT id, type, payload FROM outbox')
      .all();
  } finally {
    db.close();
  }
}

/** Asks for one mail of each kind for a new person; returns the plaintext tokens (opened from the mails). */
async function requestEveryMail(stack: InProcessStack, mailbox: Mailbox, kit: ReturnType<typeof accountKit>) {
  const person = await kit.signUp();
  await kit.call(REQUEST_RESET, { e: person.input.email });
  await kit.call('mutation { requestEmailVerification }', {}, person.accessToken);
  const newEmail = `next-${randomUUID().slice(0, 8)}@example.test`;
  await kit.call(
    'mutation($e: String!, $p: String!) { requestEmailChange(newEmail: $e, currentPassword: $p) }',
    { e: newEmail, p: PASSWORD },
    person.accessToken,
  );
  const mails = [
    await mailbox.next('aiva.auth.password_reset.requested.v1', person.input.email),
    await mailbox.next('aiva.auth.email_verification.requested.v1', person.input.email),
    await mailbox.next('aiva.auth.email_change.requested.v1', newEmail),
  ];
  for (const mail of mails) {
    expect(mail.sealedToken).toMatch(/^sealed:v1:[A-Za-z0-9_-]+:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]+$/);
    expect(mail.sealedToken).not.toContain(mail.token);
    expect(JSON.stringify(mail.event)).not.toContain(mail.token);
  }
  // The relay has published them: the outbox keeps no row of a published event.
  await waitForValue(
    () => outboxRows(stack.dataDir, 'auth.sqlite').length === 0,
    5_000,
    'the outbox to empty',
  );
  return { person, mails, tokens: mails.map((m) => m.token) };
}

describe('the outbox keeps no secret (embedded SQLite)', () => {
  let stack: InProcessStack;
  let busDown = false;
  const mailbox = new Mailbox();
  const kit = accountKit(() => stack.gatewayUrl);

  beforeAll(async () => {
    const inner = createMemoryBus();
    // A bus that can be switched off, to look at pending outbox rows.
    const bus: EventBus = {
      ...inner,
      kind: 'memory',
      publish: async (event) => {
        if (busDown) throw new Error('bus down');
        await inner.publish(event);
      },
    };
    await mailbox.subscribe(inner);
    stack = await startInProcessStack({ bus, env: { AUTH_REQUESTS_PER_ADDRESS: '1000' } });
    mailbox.useKeys(stack.auth.sealing);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('holds pending token events sealed only, and deletes them once published', async () => {
    const person = await kit.signUp();
    busDown = true;
    await kit.call(REQUEST_RESET, { e: person.input.email });
    const pending = outboxRows(stack.dataDir, 'auth.sqlite').filter((r) => TOKEN_EVENTS.has(r.type));
    expect(pending).toHaveLength(1);
    const event = JSON.parse(pending[0]!.payload) as AivaEvent;
    const sealedToken = (event.data as { token: string }).token;
    expect(sealedToken).toMatch(/^sealed:v1:/);
    // Opened with the keys from the configuration's keys file, as the mail sender would.
    const keysFile = join(stack.dataDir, 'event-sealing-keys.json');
    const keys = await loadSealingKeys({ file: keysFile, create: false });
    const token = openSealed(sealedToken, keys);
    expect(pending[0]!.payload).not.toContain(token);
    expect(diskBytes(stack.dataDir)).not.toContain(token);

    busDown = false;
    await waitForValue(
      () => outboxRows(stack.dataDir, 'auth.sqlite').length === 0,
      5_000,
      'the outbox to empty',
    );
    // The token opened from the sealed value is the real one.
    expect((await kit.call(RESET, { t: token, p: 'reset after the outage' })).body).toEqual({
      data: { resetPassword: true },
    });
    expect(codeOf(await kit.signIn(person.input.email, 'reset after the outage'))).toBeUndefined();
  });

  it('writes the keys file with mode 0600', () => {
    expect(statSync(join(stack.dataDir, 'event-sealing-keys.json')).mode & 0o777).toBe(0o600);
  });

  it('keeps no plaintext token anywhere on disk after mails were requested and published', async () => {
    const { tokens } = await requestEveryMail(stack, mailbox, kit);
    const disk = diskBytes(stack.dataDir);
    for (const token of tokens) expect(disk).not.toContain(token);
    expect(outboxRows(stack.dataDir, 'users.sqlite').filter((r) => r.payload.includes('token'))).toEqual([]);
  });
});

describe('the SQLite event log keeps no secret', () => {
  let stack: InProcessStack;
  let bus: SqliteBus;
  const dir = mkdtempSync(join(tmpdir(), 'aiva-sealed-log-'));
  const mailbox = new Mailbox();
  const kit = accountKit(() => stack.gatewayUrl);

  beforeAll(async () => {
    bus = await createSqliteBus({ file: join(dir, 'events.sqlite'), source: 'test' });
    await mailbox.subscribe(bus);
    stack = await startInProcessStack({
      bus,
      dataDir: dir,
      env: { AUTH_REQUESTS_PER_ADDRESS: '1000', AIVA_ADMIN_EMAILS: `log-admin@example.test` },
    });
    mailbox.useKeys(stack.auth.sealing);
  });
  afterAll(async () => {
    await stack?.stop();
    await bus?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores token events sealed in bus_events, and the tokens nowhere', async () => {
    const { tokens, mails } = await requestEveryMail(stack, mailbox, kit);
    const db = openSqliteDatabase(join(dir, 'events.sqlite'), { readonly: true });
    let rows: Array<{ id: string; payload: string }>;
    try {
      rows = db.prepare<[], { id: string; payload: string }>('SELECT id, payload FROM bus_events').all();
    } finally {
      db.close();
    }
    for (const mail of mails) {
      const row = rows.find((r) => r.id === mail.event.id);
      expect(row?.payload).toContain(mail.sealedToken);
      // What a mail sender on this machine reads: the log and the keys file of the data directory.
      expect(
        await readMailToken(dir, mail.event.type as 'aiva.auth.password_reset.requested.v1', mail.email),
      ).toBe(mail.token);
    }
    const everything = rows.map((r) => r.payload).join('\n') + diskBytes(dir);
    for (const token of tokens) expect(everything).not.toContain(token);
    // A reset with the opened token works: it is the real one.
    expect((await kit.call(RESET, { t: tokens[0], p: 'from the event log' })).body).toEqual({
      data: { resetPassword: true },
    });
  });

  it('lets a system test make a verified bootstrap admin from the data directory alone', async () => {
    const boss = await kit.signUp(kit.person({ email: 'log-admin@example.test' }));
    const admin = await verifyEmailThrough(stack.gatewayUrl, dir, boss, boss.input.email);
    expect(
      codeOf(await kit.call('{ users(first: 1) { totalCount } }', {}, admin.accessToken)),
    ).toBeUndefined();
  });
});

await describeInfra(
  'the NATS stream keeps no secret',
  { envVar: 'NATS_URL', defaultUrl: 'nats://127.0.0.1:4222' },
  (natsUrl) => {
    let stack: InProcessStack;
    let bus: NatsBus;
    const mailbox = new Mailbox();
    const kit = accountKit(() => stack.gatewayUrl);
    /** Raw payloads as a consumer of the stream receives them. */
    const wire: string[] = [];

    beforeAll(async () => {
      bus = await createNatsBus({ url: natsUrl, source: 'security-test', pullExpiresMs: 1000 });
      await mailbox.subscribe(bus);
      for (const type of MAIL_EVENTS) {
        await bus.subscribe(`${mailbox.consumer}-wire`, type, async (event) => {
          wire.push(JSON.stringify(event));
        });
      }
      stack = await startInProcessStack({ bus, env: { AUTH_REQUESTS_PER_ADDRESS: '1000' } });
      mailbox.useKeys(stack.auth.sealing);
    });
    afterAll(async () => {
      await stack?.stop();
      await bus?.removeConsumer(mailbox.consumer).catch(() => {});
      await bus?.removeConsumer(`${mailbox.consumer}-wire`).catch(() => {});
      await bus?.close();
    });

    it('carries token events sealed; the plaintext is in no message', async () => {
      const { tokens, mails } = await requestEveryMail(stack, mailbox, kit);
      await waitForValue(
        () => mails.every((m) => wire.some((w) => w.includes(m.event.id))),
        10_000,
        'the events on the wire consumer',
      );
      for (const mail of mails) {
        expect(wire.find((w) => w.includes(mail.event.id))).toContain(mail.sealedToken);
      }
      for (const token of tokens) expect(wire.join('\n')).not.toContain(token);
    });
  },
);
