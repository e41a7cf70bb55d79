import {
  createDecipheriv,
  createECDH,
  createPublicKey,
  type ECDH,
  hkdfSync,
  randomBytes,
  verify,
} from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  classifyDeliveryError,
  createPushChannel,
  isSubscriptionGone,
  loadOrCreateVapidKeys,
  MAX_PUSH_PAYLOAD_BYTES,
  PermanentDeliveryError,
  type PushChannel,
  type PushSubscription,
  TransientDeliveryError,
  type VapidKeys,
} from '../../src/channels/index.js';
import { capturingLogger, closeServer, listen, rejectionOf, tempDir } from './helpers.js';

const SUBJECT = 'mailto:ops@aiva.example.com';

/** A browser's side of a subscription: a P-256 key pair and a 16-byte auth secret. */
function newSubscriber(endpoint: string): { subscription: PushSubscription; ecdh: ECDH; auth: Buffer } {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const auth = randomBytes(16);
  return {
    ecdh,
    auth,
    subscription: {
      endpoint,
      keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') },
    },
  };
}

/** What the browser does with a push message: RFC 8291 / RFC 8188 aes128gcm decryption, one record. */
function decrypt(body: Buffer, ecdh: ECDH, auth: Buffer): string {
  const salt = body.subarray(0, 16);
  const idLength = body.readUInt8(20);
  const serverPublicKey = body.subarray(21, 21 + idLength);
  const record = body.subarray(21 + idLength);
  const shared = ecdh.computeSecret(serverPublicKey);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), ecdh.getPublicKey(), serverPublicKey]);
  const ikm = Buffer.from(hkdfSync('sha256', shared, auth, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
  const end = padded.lastIndexOf(2); // the last-record delimiter, then zero padding
  return padded.subarray(0, end).toString('utf8');
}

/** What a push service does with `Authorization: vapid t=…, k=…`: checks the ES256 JWT against k. */
function verifyVapid(header: string | undefined): { claims: Record<string, unknown>; publicKey: string } {
  const match = /^vapid t=([\w-]+\.[\w-]+\.[\w-]+), k=([\w-]+)$/.exec(header ?? '');
  if (!match) throw new Error(`not a VAPID authorization: ${header}`);
  const [token, k] = [match[1]!, match[2]!];
  const raw = Buffer.from(k, 'base64url');
  const key = createPublicKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      x: raw.subarray(1, 33).toString('base64url'),
      y: raw.subarray(33, 65).toString('base64url'),
    },
    format: 'jwk',
  });
  const [head, payload, signature] = token.split('.') as [string, string, string];
  const ok = verify(
    'sha256',
    Buffer.from(`${head}.${payload}`),
    { key, dsaEncoding: 'ieee-p1363' },
    Buffer.from(signature, 'base64url'),
  );
  if (!ok) throw new Error('bad VAPID signature');
  expect(JSON.parse(Buffer.from(head, 'base64url').toString())).toMatchObject({ alg: 'ES256', typ: 'JWT' });
  return { claims: JSON.parse(Buffer.from(payload, 'base64url').toString()), publicKey: k };
}

interface Captured {
  url: string | undefined;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

describe('VAPID keys', () => {
  let temp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    temp = tempDir('aiva-vapid-');
  });
  afterEach(() => temp.remove());

  it('are generated on first start into a 0600 file and read back unchanged afterwards', async () => {
    const { logger, lines } = capturingLogger();
    const file = join(temp.dir, 'keys', 'vapid.json');
    const keys = await loadOrCreateVapidKeys(file, SUBJECT, logger);
    expect(Buffer.from(keys.publicKey, 'base64url')).toHaveLength(65);
    expect(Buffer.from(keys.privateKey, 'base64url')).toHaveLength(32);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ version: 1, ...keys });
    expect(await loadOrCreateVapidKeys(file, SUBJECT, logger)).toEqual(keys);
    const ready = lines.filter((line) => line.msg === 'VAPID key file ready');
    expect(ready).toHaveLength(1);
    expect(JSON.stringify(lines)).not.toContain(keys.privateKey);
  });

  it('two processes starting together end up with the same keys', async () => {
    const file = join(temp.dir, 'vapid.json');
    const [a, b] = await Promise.all([
      loadOrCreateVapidKeys(file, SUBJECT),
      loadOrCreateVapidKeys(file, SUBJECT),
    ]);
    expect(a).toEqual(b);
  });

  it('refuses a damaged file or a mismatched pair without showing key material, and a bad subject', async () => {
    const file = join(temp.dir, 'vapid.json');
    const keys = await loadOrCreateVapidKeys(file, SUBJECT);
    const other = createECDH('prime256v1');
    other.generateKeys();
    writeFileSync(
      file,
      JSON.stringify({
        version: 1,
        publicKey: other.getPublicKey('base64url'),
        privateKey: keys.privateKey,
        createdAt: 'x',
      }),
    );
    chmodSync(file, 0o600);
    const mismatch = await rejectionOf(loadOrCreateVapidKeys(file, SUBJECT));
    expect(mismatch.message).toMatch(/does not belong to the private key/);
    expect(mismatch.message).not.toContain(keys.privateKey);

    writeFileSync(file, JSON.stringify({ version: 1, publicKey: 'x', privateKey: keys.privateKey }));
    const damaged = await rejectionOf(loadOrCreateVapidKeys(file, SUBJECT));
    expect(damaged.message).toMatch(/VAPID key file .* is invalid: createdAt/);
    expect(damaged.message).not.toContain(keys.privateKey);

    await expect(loadOrCreateVapidKeys(join(temp.dir, 'new.json'), 'ops@example.com')).rejects.toThrow(
      /mailto: address or an https: URL/,
    );
  });
});

describe('push channel (a local server as the push service)', () => {
  let server: Server;
  let baseUrl: string;
  let requests: Captured[];
  let replies: { status: number; body?: string; headers?: Record<string, string>; hang?: boolean }[];
  let vapid: VapidKeys;
  let temp: ReturnType<typeof tempDir>;

  const open = (timeoutMs?: number): PushChannel =>
    createPushChannel({ vapid, subject: SUBJECT, timeoutMs, allowHttpEndpoints: true });

  beforeEach(async () => {
    temp = tempDir('aiva-push-');
    vapid = await loadOrCreateVapidKeys(join(temp.dir, 'vapid.json'), SUBJECT);
    requests = [];
    replies = [];
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        requests.push({ url: req.url, headers: req.headers, body: Buffer.concat(chunks) });
        const reply = replies.shift() ?? {
          status: 201,
          headers: { location: `${baseUrl}/message/${requests.length}` },
        };
        if (reply.hang) return;
        res.writeHead(reply.status, reply.headers);
        res.end(reply.body ?? '');
      });
    });
    baseUrl = await listen(server);
  });

  afterEach(async () => {
    await closeServer(server);
    temp.remove();
  });

  it('posts the payload encrypted (aes128gcm) for the subscriber, signed with VAPID', async () => {
    const { subscription, ecdh, auth } = newSubscriber(`${baseUrl}/push/sub-1?x=1`);
    const push = open();
    expect(push.publicKey).toBe(vapid.publicKey);
    const payload = { title: 'New sign-in', body: 'Firefox on Linux <b>', url: '/security', n: 1 };
    const { id } = await push.send(subscription, payload, {
      urgency: 'high',
      topic: 'security',
      ttlSeconds: 60,
    });
    expect(id).toBe(`${baseUrl}/message/1`);

    expect(requests).toHaveLength(1);
    const [request] = requests;
    expect(request?.url).toBe('/push/sub-1?x=1');
    expect(request?.headers['content-encoding']).toBe('aes128gcm');
    expect(request?.headers['content-type']).toBe('application/octet-stream');
    expect(request?.headers.ttl).toBe('60');
    expect(request?.headers.urgency).toBe('high');
    expect(request?.headers.topic).toBe('security');
    expect(request?.body.includes(Buffer.from('New sign-in'))).toBe(false);
    expect(JSON.parse(decrypt(request!.body, ecdh, auth))).toEqual(payload);

    const { claims, publicKey } = verifyVapid(request?.headers.authorization);
    expect(publicKey).toBe(vapid.publicKey);
    expect(claims.aud).toBe(baseUrl);
    expect(claims.sub).toBe(SUBJECT);
    expect(claims.exp).toBeGreaterThan(Date.now() / 1000);
  });

  it('reports 410 and 404 as a gone subscription (permanent), without the endpoint path', async () => {
    const { subscription } = newSubscriber(`${baseUrl}/push/secret-capability-path`);
    const push = open();
    for (const status of [410, 404]) {
      replies.push({ status, body: 'push subscription has unsubscribed or expired.\n' });
      const error = await rejectionOf(push.send(subscription, { hi: true }));
      expect(error).toBeInstanceOf(PermanentDeliveryError);
      expect(isSubscriptionGone(error)).toBe(true);
      expect(error).toMatchObject({ channel: 'push', status, gone: true, code: 'ESUBSCRIPTIONGONE' });
      expect(error.message).toBe(
        `push service ${baseUrl} answered HTTP ${status}: push subscription has unsubscribed or expired.`,
      );
    }
  });

  it('fails transiently on 429 and 5xx, permanently (not gone) on other 4xx', async () => {
    const { subscription } = newSubscriber(`${baseUrl}/push/1`);
    const push = open();
    replies.push({ status: 429, headers: { 'retry-after': '30' } });
    const limited = await rejectionOf(push.send(subscription, {}));
    expect(limited).toBeInstanceOf(TransientDeliveryError);
    expect(limited).toMatchObject({ status: 429, retryAfterMs: 30_000 });

    replies.push({ status: 502 });
    expect(classifyDeliveryError(await rejectionOf(push.send(subscription, {})))).toBe('transient');

    replies.push({ status: 400, body: '{"reason":"BadJwtToken"}' });
    const bad = await rejectionOf(push.send(subscription, {}));
    expect(bad).toBeInstanceOf(PermanentDeliveryError);
    expect(isSubscriptionGone(bad)).toBe(false);
    expect(bad.message).toContain('BadJwtToken');
  });

  it('fails transiently when the push service does not answer in time', async () => {
    const { subscription } = newSubscriber(`${baseUrl}/push/1`);
    replies.push({ status: 201, hang: true });
    const error = await rejectionOf(open(200).send(subscription, {}));
    expect(error).toBeInstanceOf(TransientDeliveryError);
    expect(error).toMatchObject({ code: 'ETIMEDOUT' });
  });

  it('treats an unusable subscription as gone, and refuses an oversized payload, without a request', async () => {
    const { subscription } = newSubscriber(`${baseUrl}/push/1`);
    const push = open();
    const broken = [
      { ...subscription, endpoint: 'not a url' },
      { ...subscription, keys: { ...subscription.keys, p256dh: 'AAAA' } },
      { ...subscription, keys: { ...subscription.keys, auth: 'AAAA' } },
    ];
    for (const candidate of broken) {
      const error = await rejectionOf(push.send(candidate, {}));
      expect(isSubscriptionGone(error)).toBe(true);
    }
    const https = createPushChannel({ vapid, subject: SUBJECT });
    expect(isSubscriptionGone(await rejectionOf(https.send(subscription, {})))).toBe(true);

    const big = await rejectionOf(push.send(subscription, { text: 'x'.repeat(MAX_PUSH_PAYLOAD_BYTES) }));
    expect(big).toBeInstanceOf(PermanentDeliveryError);
    expect(isSubscriptionGone(big)).toBe(false);
    expect(requests).toHaveLength(0);
  });

  it('refuses a bad subject or keys that are not a pair when created', () => {
    expect(() => createPushChannel({ vapid, subject: 'http://aiva.example.com' })).toThrow(/VAPID subject/);
    const other = createECDH('prime256v1');
    other.generateKeys();
    expect(() =>
      createPushChannel({
        vapid: { ...vapid, publicKey: other.getPublicKey('base64url') },
        subject: SUBJECT,
      }),
    ).toThrow(/does not belong/);
  });
});
