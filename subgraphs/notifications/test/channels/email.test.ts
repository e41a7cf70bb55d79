import { readdirSync, readFileSync, statSync } from 'node:fs';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  classifyDeliveryError,
  createEmailChannel,
  type EmailChannel,
  PermanentDeliveryError,
  TransientDeliveryError,
} from '../../src/channels/index.js';
import { renderEmail } from '../../src/templates/index.js';
import { capturingLogger, rejectionOf, tempDir } from './helpers.js';

const PASSWORD = 'p@ss/w0rd-s3cret';
const FROM = 'AIVA <no-reply@aiva.example.com>';
const RESET_URL = 'https://aiva.example.com/reset?token=t0k3n&lang=en';
const MAIL = {
  to: 'ada@example.com',
  ...renderEmail(
    'password_reset',
    { resetUrl: RESET_URL, expiresAt: '2026-11-27T04:30:00Z' },
    { appName: 'AIVA', appUrl: 'https://aiva.example.com' },
  ),
  headers: { 'X-Notification-Id': 'n-123' },
};

/** Header block and decoded text/HTML parts of a raw multipart/alternative message (enough for these tests). */
function parseMime(raw: string): { headers: string; text: string; html: string } {
  const [headers = '', ...rest] = raw.split('\r\n\r\n');
  const boundary = /boundary="?([^"\r\n;]+)"?/.exec(headers)?.[1];
  if (!boundary) throw new Error('not a multipart message');
  const parts: Record<string, string> = {};
  for (const part of rest.join('\r\n\r\n').split(`--${boundary}`)) {
    const split = part.indexOf('\r\n\r\n');
    if (split < 0) continue;
    const head = part.slice(0, split);
    const type = /content-type:\s*([\w/]+)/i.exec(head)?.[1]?.toLowerCase();
    const encoding = /content-transfer-encoding:\s*([\w-]+)/i.exec(head)?.[1]?.toLowerCase();
    let body = part.slice(split + 4).replace(/\r\n$/, '');
    if (encoding === 'quoted-printable') {
      const bytes = body
        .replace(/=\r\n/g, '')
        .replace(/=([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
      body = Buffer.from(bytes, 'latin1').toString('utf8');
    } else if (encoding === 'base64') {
      body = Buffer.from(body, 'base64').toString('utf8');
    }
    if (type) parts[type] = body;
  }
  return { headers, text: parts['text/plain'] ?? '', html: parts['text/html'] ?? '' };
}

function expectWholeMail(raw: string, messageId: string) {
  expect(raw).toContain('\r\n');
  const mail = parseMime(raw);
  expect(mail.headers).toMatch(/^From: AIVA <no-reply@aiva\.example\.com>$/m);
  expect(mail.headers).toMatch(/^To: ada@example\.com$/m);
  expect(mail.headers).toMatch(/^Subject: Reset your AIVA password$/m);
  expect(mail.headers).toMatch(/^X-Notification-Id: n-123$/im);
  expect(mail.headers).toContain(`Message-ID: ${messageId}`);
  expect(mail.headers).toMatch(/Content-Type: multipart\/alternative/);
  expect(mail.text).toContain(RESET_URL);
  expect(mail.html).toContain('href="https://aiva.example.com/reset?token=t0k3n&amp;lang=en"');
}

interface Received {
  from: string;
  to: string[];
  user: string | undefined;
  raw: string;
}

describe('email channel over SMTP (a real SMTP server)', () => {
  let server: SMTPServer;
  let port: number;
  let received: Received[];
  /** What the server answers to the next RCPT TO commands (null: accept). */
  let rcptReplies: ({ code: number; text: string } | null)[];
  /** Take the message data but never give the final reply. */
  let stallData: boolean;
  let channel: EmailChannel | undefined;
  const { logger } = capturingLogger();

  const smtpError = (code: number, text: string) => Object.assign(new Error(text), { responseCode: code });
  const open = (
    url = `smtp://mailer:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}`,
    timeoutMs?: number,
  ) => {
    channel = createEmailChannel({ smtpUrl: url, from: FROM, mailDir: '/nonexistent', logger, timeoutMs });
    return channel;
  };

  beforeEach(async () => {
    received = [];
    rcptReplies = [];
    stallData = false;
    server = new SMTPServer({
      logger: false,
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      onAuth(auth, _session, callback) {
        if (auth.username === 'mailer' && auth.password === PASSWORD)
          return callback(null, { user: auth.username });
        // A careless server echoing the credentials back: they must still not reach our error message.
        callback(smtpError(535, `Authentication failed for ${auth.username}:${auth.password}`));
      },
      onRcptTo(_address, _session, callback) {
        const reply = rcptReplies.shift();
        callback(reply ? smtpError(reply.code, reply.text) : null);
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          if (stallData) return;
          received.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            user: session.user as string | undefined,
            raw: Buffer.concat(chunks).toString('utf8'),
          });
          callback(null);
        });
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    port = (server.server.address() as AddressInfo).port;
  });

  afterEach(async () => {
    await channel?.close();
    channel = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('logs in and delivers a multipart mail with both parts and the extra headers', async () => {
    const email = open();
    expect(email.kind).toBe('smtp');
    expect(email.target).toBe(`smtp://127.0.0.1:${port}`);
    await email.verify();
    const { messageId } = await email.send(MAIL);
    expect(received).toHaveLength(1);
    const [mail] = received;
    expect(mail?.user).toBe('mailer');
    expect(mail?.from).toBe('no-reply@aiva.example.com');
    expect(mail?.to).toEqual(['ada@example.com']);
    expectWholeMail(mail!.raw, messageId);
  });

  it('sends a mail sent again with the same idempotency key as the same message (one Message-ID)', async () => {
    const email = open();
    const first = await email.send({ ...MAIL, idempotencyKey: 'aiva-delivery-d1' });
    const again = await email.send({ ...MAIL, idempotencyKey: 'aiva-delivery-d1' });
    const other = await email.send({ ...MAIL, idempotencyKey: 'aiva-delivery-d2' });
    expect(first.messageId).toBe('<aiva-delivery-d1@aiva.example.com>');
    expect(again.messageId).toBe(first.messageId);
    expect(other.messageId).toBe('<aiva-delivery-d2@aiva.example.com>');
    const ids = received.map((mail) => /^Message-ID: (.*)$/m.exec(parseMime(mail.raw).headers)?.[1]);
    expect(ids).toEqual([first.messageId, first.messageId, other.messageId]);
    await expect(email.send({ ...MAIL, idempotencyKey: 'a>b\r\nBcc: x@example.com' })).rejects.toBeInstanceOf(
      PermanentDeliveryError,
    );
    expect(received).toHaveLength(3);
  });

  it('fails transiently on a 4xx reply (greylisting) and delivers on the next attempt', async () => {
    const email = open();
    rcptReplies.push({ code: 451, text: '4.7.1 Greylisted, try again later' });
    const error = await rejectionOf(email.send(MAIL));
    expect(error).toBeInstanceOf(TransientDeliveryError);
    expect(classifyDeliveryError(error)).toBe('transient');
    expect(error).toMatchObject({ channel: 'email', status: 451, code: '451' });
    expect(error.message).toContain('Greylisted');
    expect(received).toHaveLength(0);

    await email.send(MAIL);
    expect(received).toHaveLength(1);
  });

  it('fails permanently on a 5xx reply (no such mailbox)', async () => {
    const email = open();
    rcptReplies.push({ code: 550, text: '5.1.1 No such user here' });
    const error = await rejectionOf(email.send(MAIL));
    expect(error).toBeInstanceOf(PermanentDeliveryError);
    expect(classifyDeliveryError(error)).toBe('permanent');
    expect(error).toMatchObject({ status: 550, gone: false });
  });

  it('fails transiently when the whole send exceeds its deadline (no final reply to the data)', async () => {
    stallData = true;
    const email = open(undefined, 300);
    const error = await rejectionOf(email.send(MAIL));
    expect(error).toBeInstanceOf(TransientDeliveryError);
    expect(error).toMatchObject({ code: 'ETIMEDOUT' });
    expect(received).toHaveLength(0);
  });

  it('fails permanently on rejected credentials, without the password in the message', async () => {
    const wrong = 'wr0ng-s3cret!';
    const email = open(`smtp://mailer:${encodeURIComponent(wrong)}@127.0.0.1:${port}`);
    const error = await rejectionOf(email.send(MAIL));
    expect(error).toBeInstanceOf(PermanentDeliveryError);
    expect(error).toMatchObject({ status: 535 });
    expect(error.message).toContain('Authentication failed for mailer:');
    expect(error.message).not.toContain(wrong);
    expect(error.message).not.toContain(encodeURIComponent(wrong));
    await expect(email.verify()).rejects.toBeInstanceOf(PermanentDeliveryError);
  });

  it('refuses an invalid recipient permanently, before connecting', async () => {
    const error = await rejectionOf(open().send({ ...MAIL, to: 'not an address' }));
    expect(error).toBeInstanceOf(PermanentDeliveryError);
    expect(error).toMatchObject({ code: 'EENVELOPE' });
    const header = await rejectionOf(
      open().send({ ...MAIL, headers: { 'X-Evil': 'a\r\nBcc: x@example.com' } }),
    );
    expect(header).toBeInstanceOf(PermanentDeliveryError);
    expect(received).toHaveLength(0);
  });

  it('refuses URLs that are not smtp(s) without echoing them', () => {
    expect(() => open(`http://mailer:${PASSWORD}@127.0.0.1:25`)).toThrow(/smtp:\/\/ or smtps:\/\//);
    expect(() => open(`http://mailer:${PASSWORD}@127.0.0.1:25`)).not.toThrow(PASSWORD);
  });
});

describe('email channel: network failures are transient', () => {
  const { logger } = capturingLogger();
  const sockets = new Set<Socket>();
  let silent: Server | undefined;

  afterEach(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => (silent ? silent.close(() => resolve()) : resolve()));
    silent = undefined;
  });

  it('a refused connection', async () => {
    // A port that was just free: bind, note it, close.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const email = createEmailChannel({
      smtpUrl: `smtp://mailer:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}`,
      from: FROM,
      mailDir: '/nonexistent',
      logger,
    });
    const error = await rejectionOf(email.send(MAIL));
    expect(error).toBeInstanceOf(TransientDeliveryError);
    expect(error).toMatchObject({ code: 'ECONNREFUSED' });
    expect(error.message).not.toContain(PASSWORD);
    expect(error.message).not.toContain(encodeURIComponent(PASSWORD));
    await email.close();
  });

  it('a server that never sends its greeting (greeting timeout)', async () => {
    silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent!.listen(0, '127.0.0.1', () => resolve()));
    const port = (silent.address() as AddressInfo).port;
    const email = createEmailChannel({
      smtpUrl: `smtp://mailer:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}`,
      from: FROM,
      mailDir: '/nonexistent',
      logger,
      timeouts: { greetingMs: 300 },
    });
    const error = await rejectionOf(email.send(MAIL));
    expect(error).toBeInstanceOf(TransientDeliveryError);
    expect(error).toMatchObject({ code: 'ETIMEDOUT' });
    await email.close();
  });

  it('a server that hangs up right after connecting (socket closed)', async () => {
    silent = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => silent!.listen(0, '127.0.0.1', () => resolve()));
    const port = (silent.address() as AddressInfo).port;
    const email = createEmailChannel({
      smtpUrl: `smtp://127.0.0.1:${port}`,
      from: FROM,
      mailDir: '/x',
      logger,
    });
    const error = await rejectionOf(email.send(MAIL));
    expect(error).toBeInstanceOf(TransientDeliveryError);
    expect(classifyDeliveryError(error)).toBe('transient');
    await email.close();
  });
});

describe('email channel without SMTP (.eml files)', () => {
  let temp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    temp = tempDir('aiva-mail-');
  });
  afterEach(() => temp.remove());

  it('writes one RFC 822 file per mail (mode 0600) and logs its path', async () => {
    const { logger, lines } = capturingLogger();
    const mailDir = join(temp.dir, '.data', 'mail');
    const email = createEmailChannel({ from: FROM, mailDir, logger });
    expect(email.kind).toBe('file');
    expect(email.target).toBe(mailDir);
    await email.verify();
    const first = await email.send(MAIL);
    const second = await email.send({ ...MAIL, to: 'grace@example.com' });
    expect(first.messageId).not.toBe(second.messageId);

    const files = readdirSync(mailDir).sort();
    expect(files).toHaveLength(2);
    expect(files.every((name) => name.endsWith('.eml'))).toBe(true);
    const file = join(mailDir, files[0]!);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(mailDir).mode & 0o777).toBe(0o700);
    const raw = readFileSync(file, 'utf8');
    expectWholeMail(raw, first.messageId);

    const logged = lines.filter((line) => line.msg === 'email written to file (no SMTP server configured)');
    expect(logged.map((line) => line.file)).toEqual(files.map((name) => join(mailDir, name)));
    expect(logged[0]?.level).toBe(30);
    await email.close();
  });

  it('refuses an invalid recipient permanently and writes nothing', async () => {
    const { logger } = capturingLogger();
    const mailDir = join(temp.dir, 'mail');
    const email = createEmailChannel({ from: FROM, mailDir, logger });
    await expect(email.send({ ...MAIL, to: 'nobody' })).rejects.toBeInstanceOf(PermanentDeliveryError);
    expect(() => readdirSync(mailDir)).toThrow();
  });
});
