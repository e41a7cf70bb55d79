import { readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  classifyDeliveryError,
  createSmsChannel,
  PermanentDeliveryError,
  type SmsChannel,
  TransientDeliveryError,
} from '../../src/channels/index.js';
import { capturingLogger, closeServer, listen, rejectionOf, tempDir } from './helpers.js';

const SID = 'AC0123456789abcdef0123456789abcdef';
const TOKEN = 'f00dfeedf00dfeedf00dfeedf00dfeed';
const FROM = '+15005550006';
const TO = '+14155552671';

interface Captured {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingMessage['headers'];
  body: string;
}

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Never answer (for timeouts). */
  hang?: boolean;
}

/** Twilio's answer to a created message (201), trimmed to the usual fields. */
function createdMessage(form: URLSearchParams, sid: string) {
  return {
    account_sid: SID,
    api_version: '2010-04-01',
    body: form.get('Body'),
    date_created: new Date().toUTCString(),
    direction: 'outbound-api',
    error_code: null,
    error_message: null,
    from: form.get('From'),
    num_segments: '1',
    price: null,
    sid,
    status: 'queued',
    to: form.get('To'),
    uri: `/2010-04-01/Accounts/${SID}/Messages/${sid}.json`,
  };
}

/** Twilio's error document. */
const twilioError = (status: number, code: number, message: string) => ({
  code,
  message,
  more_info: `https://www.twilio.com/docs/errors/${code}`,
  status,
});

describe('SMS channel over Twilio (a local server speaking its wire format)', () => {
  let server: Server;
  let baseUrl: string;
  let requests: Captured[];
  let replies: Reply[];
  const { logger } = capturingLogger();

  const open = (timeoutMs?: number): SmsChannel =>
    createSmsChannel({
      twilio: { accountSid: SID, authToken: TOKEN, from: FROM, baseUrl },
      logFile: '/nonexistent/sms.log',
      logger,
      timeoutMs,
    });

  beforeEach(async () => {
    requests = [];
    replies = [];
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        requests.push({ method: req.method, url: req.url, headers: req.headers, body });
        const reply = replies.shift() ?? {
          status: 201,
          body: createdMessage(
            new URLSearchParams(body),
            `SM${requests.length.toString().padStart(32, '0')}`,
          ),
        };
        if (reply.hang) return;
        res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
        res.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
      });
    });
    baseUrl = await listen(server);
  });

  afterEach(() => closeServer(server));

  it('posts To, From and Body form-encoded with basic auth, and returns the message sid', async () => {
    const sms = open();
    expect(sms.kind).toBe('twilio');
    const body = 'Your AIVA code is 123456 & expires in 10 min — ünïcode';
    const { id } = await sms.send({ to: TO, body });
    expect(id).toBe(`SM${'1'.padStart(32, '0')}`);

    expect(requests).toHaveLength(1);
    const [request] = requests;
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe(`/2010-04-01/Accounts/${SID}/Messages.json`);
    expect(request?.headers.authorization).toBe(`Basic ${Buffer.from(`${SID}:${TOKEN}`).toString('base64')}`);
    expect(request?.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    const form = new URLSearchParams(request?.body);
    expect(Object.fromEntries(form)).toEqual({ To: TO, From: FROM, Body: body });
  });

  it('fails permanently on a Twilio 400 (21211 invalid To), with Twilio code and message', async () => {
    replies.push({ status: 400, body: twilioError(400, 21211, "Invalid 'To' Phone Number: +1415555XXXX") });
    const error = await rejectionOf(open().send({ to: TO, body: 'hi' }));
    expect(error).toBeInstanceOf(PermanentDeliveryError);
    expect(classifyDeliveryError(error)).toBe('permanent');
    expect(error).toMatchObject({ channel: 'sms', status: 400, code: '21211' });
    expect(error.message).toBe(
      "Twilio answered HTTP 400 (error 21211): Invalid 'To' Phone Number: +1415555XXXX",
    );
  });

  it('fails transiently on 429 (with Retry-After) and 503, permanently on 401', async () => {
    const sms = open();
    replies.push({
      status: 429,
      body: twilioError(429, 20429, 'Too Many Requests'),
      headers: { 'retry-after': '7' },
    });
    const limited = await rejectionOf(sms.send({ to: TO, body: 'hi' }));
    expect(limited).toBeInstanceOf(TransientDeliveryError);
    expect(limited).toMatchObject({ status: 429, code: '20429', retryAfterMs: 7000 });

    replies.push({
      status: 503,
      body: '<html>Service Unavailable</html>',
      headers: { 'content-type': 'text/html' },
    });
    const unavailable = await rejectionOf(sms.send({ to: TO, body: 'hi' }));
    expect(unavailable).toBeInstanceOf(TransientDeliveryError);
    expect(unavailable).toMatchObject({ status: 503, code: undefined, retryAfterMs: undefined });

    replies.push({ status: 401, body: twilioError(401, 20003, 'Authenticate') });
    const denied = await rejectionOf(sms.send({ to: TO, body: 'hi' }));
    expect(denied).toBeInstanceOf(PermanentDeliveryError);
    expect(denied).toMatchObject({ status: 401, code: '20003' });

    expect((await sms.send({ to: TO, body: 'hi' })).id).toMatch(/^SM/);
  });

  it('never puts the auth token into an error message, even when the answer echoes it', async () => {
    const basic = Buffer.from(`${SID}:${TOKEN}`).toString('base64');
    replies.push({
      status: 400,
      body: twilioError(400, 21604, `bad request with token ${TOKEN} / ${basic}`),
    });
    const error = await rejectionOf(open().send({ to: TO, body: 'hi' }));
    expect(error.message).not.toContain(TOKEN);
    expect(error.message).not.toContain(basic);
    expect(error.message).toContain('[redacted]');
  });

  it('fails transiently when Twilio does not answer in time or cannot be reached', async () => {
    replies.push({ status: 201, hang: true });
    const slow = await rejectionOf(open(200).send({ to: TO, body: 'hi' }));
    expect(slow).toBeInstanceOf(TransientDeliveryError);
    expect(slow).toMatchObject({ code: 'ETIMEDOUT' });

    const url = baseUrl;
    await closeServer(server);
    server = createServer();
    const refused = await rejectionOf(
      createSmsChannel({
        twilio: { accountSid: SID, authToken: TOKEN, from: FROM, baseUrl: url },
        logFile: '/x',
        logger,
      }).send({ to: TO, body: 'hi' }),
    );
    expect(refused).toBeInstanceOf(TransientDeliveryError);
    expect(refused).toMatchObject({ code: 'ECONNREFUSED' });
    expect(refused.message).not.toContain(TOKEN);
  });

  it('refuses a number that is not E.164, permanently and without a request', async () => {
    const error = await rejectionOf(open().send({ to: '0155 1234', body: 'hi' }));
    expect(error).toBeInstanceOf(PermanentDeliveryError);
    await expect(open().send({ to: TO, body: '' })).rejects.toBeInstanceOf(PermanentDeliveryError);
    expect(requests).toHaveLength(0);
  });
});

describe('SMS channel without Twilio (log file)', () => {
  let temp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    temp = tempDir('aiva-sms-');
  });
  afterEach(() => temp.remove());

  it('appends one JSON line per message (mode 0600) and logs where', async () => {
    const { logger, lines } = capturingLogger();
    const logFile = join(temp.dir, '.data', 'sms.log');
    const sms = createSmsChannel({ logFile, logger });
    expect(sms.kind).toBe('file');
    const first = await sms.send({ to: TO, body: 'code 111111' });
    const second = await sms.send({ to: '+447700900123', body: 'line one\nline two' });
    expect(first.id).not.toBe(second.id);

    const entries = readFileSync(logFile, 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(entries).toMatchObject([
      { id: first.id, to: TO, body: 'code 111111' },
      { id: second.id, to: '+447700900123', body: 'line one\nline two' },
    ]);
    expect(typeof entries[0]?.at).toBe('string');
    expect(statSync(logFile).mode & 0o777).toBe(0o600);
    const logged = lines.filter((line) => line.msg === 'SMS written to the log file (Twilio not configured)');
    expect(logged.map((line) => [line.file, line.id])).toEqual([
      [logFile, first.id],
      [logFile, second.id],
    ]);
  });
});
