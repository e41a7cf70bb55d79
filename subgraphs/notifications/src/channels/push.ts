import { createECDH } from 'node:crypto';
import { link, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type Logger, PRIVATE_DIR_MODE, placePrivateFile, readPrivateFileOf } from '@aiva/shared';
import webpush from 'web-push';
import { z } from 'zod';
import { httpDeliveryError, networkDeliveryError, PermanentDeliveryError } from './errors.js';

// Web push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payload encryption (RFC 8291). web-push builds the
// request (encrypts the payload for the subscription, signs the VAPID token); we send it with fetch, which gives
// one timeout for the whole request and one error path shared with the other HTTP channel.

/** The application server's VAPID key pair, base64url (the public key is what browsers subscribe with). */
export interface VapidKeys {
  publicKey: string;
  privateKey: string;
}

/** A browser's PushSubscription as `subscription.toJSON()` gives it. */
export interface PushSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export type PushUrgency = 'very-low' | 'low' | 'normal' | 'high';

export interface PushChannelOptions {
  vapid: VapidKeys;
  /** Who runs this server, for push services to reach: `mailto:ops@example.com` or an https: URL. */
  subject: string;
  /** How long one request to a push service may take in all. Default 10 s. */
  timeoutMs?: number;
  /** How long a push service keeps an undelivered message (device offline). Default one day. */
  ttlSeconds?: number;
  /** Accept `http:` endpoints. Only for tests: real push services are https, and http would let anyone with a subscription make us call plain-text URLs. */
  allowHttpEndpoints?: boolean;
}

export interface PushSendOptions {
  ttlSeconds?: number;
  urgency?: PushUrgency;
  /** Replaces an undelivered message with the same topic (≤ 32 base64url characters). */
  topic?: string;
}

export interface PushChannel {
  /** The VAPID public key, for browsers' `pushManager.subscribe({ applicationServerKey })`. */
  readonly publicKey: string;
  /**
   * Encrypts `payload` (as JSON) for the subscription and posts it to its push service. `id` is the message URL
   * the push service answers with (`Location`), when it gives one. Throws a TransientDeliveryError or a
   * PermanentDeliveryError; `gone: true` (404/410, or a subscription that can never work) means delete it.
   */
  send(
    subscription: PushSubscription,
    payload: object,
    options?: PushSendOptions,
  ): Promise<{ id: string | null }>;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_TTL_SECONDS = 24 * 60 * 60;
/** The largest plaintext one aes128gcm record of 4096 bytes carries (RFC 8291 §4: 4096 − 86 − 16 − 1). */
export const MAX_PUSH_PAYLOAD_BYTES = 3993;

const base64url = z.string().regex(/^[A-Za-z0-9_-]+={0,2}$/, 'expected base64url');
const decodedLength = (value: string) => Buffer.from(value, 'base64url').length;

/** Checks that `subject` is what push services accept (web-push would only notice at the first send). */
function checkSubject(subject: string): void {
  const ok = URL.canParse(subject) && ['https:', 'mailto:'].includes(new URL(subject).protocol);
  if (!ok) throw new RangeError('VAPID subject must be a mailto: address or an https: URL');
}

/** Throws unless the pair is a P-256 key pair: a 65-byte uncompressed public key matching the 32-byte private one. */
function checkVapidKeys(keys: VapidKeys, where: string): void {
  const publicKey = Buffer.from(keys.publicKey, 'base64url');
  const privateKey = Buffer.from(keys.privateKey, 'base64url');
  if (publicKey.length !== 65 || publicKey[0] !== 4 || privateKey.length !== 32) {
    throw new Error(`${where}: the VAPID keys are not a P-256 key pair`);
  }
  const ecdh = createECDH('prime256v1');
  try {
    ecdh.setPrivateKey(privateKey);
  } catch {
    throw new Error(`${where}: the VAPID private key is not a valid P-256 key`);
  }
  if (!ecdh.getPublicKey().equals(publicKey)) {
    throw new Error(`${where}: the VAPID public key does not belong to the private key`);
  }
}

const vapidFileSchema = z.object({
  version: z.literal(1),
  publicKey: base64url,
  privateKey: base64url,
  createdAt: z.string(),
});

async function readVapidFile(file: string, logger: Logger | undefined): Promise<VapidKeys | null> {
  const stored = await readPrivateFileOf(file, 'VAPID key file', vapidFileSchema, logger);
  if (stored === null) return null;
  const keys = { publicKey: stored.publicKey, privateKey: stored.privateKey };
  checkVapidKeys(keys, `VAPID key file ${file}`);
  return keys;
}

/**
 * The VAPID key pair of this service: read from `file`, or generated on first start and written there (mode
 * 0600, created only if still absent, so two processes starting together end up with the same keys). The keys
 * must stay: every browser subscription is bound to the public key. `subject` is checked here so a bad
 * VAPID_SUBJECT stops the start rather than the first push. No message ever includes key material.
 */
export async function loadOrCreateVapidKeys(
  file: string,
  subject: string,
  logger?: Logger,
): Promise<VapidKeys> {
  checkSubject(subject);
  const existing = await readVapidFile(file, logger);
  if (existing) return existing;
  await mkdir(dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE });
  const generated = webpush.generateVAPIDKeys();
  const content = `${JSON.stringify({ version: 1, ...generated, createdAt: new Date().toISOString() }, null, 2)}\n`;
  await placePrivateFile(file, content, (tmp) =>
    link(tmp, file).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    }),
  );
  const created = await readVapidFile(file, logger);
  if (!created) throw new Error(`VAPID key file ${file} could not be created`);
  logger?.info({ file, publicKey: created.publicKey }, 'VAPID key file ready');
  return created;
}

/** The parts of a subscription we need, checked: an unusable one is permanently unusable (gone). */
function checkSubscription(subscription: PushSubscription, allowHttp: boolean): URL {
  const gone = (why: string) =>
    new PermanentDeliveryError('push', `invalid push subscription: ${why}`, {
      code: 'EINVALIDSUBSCRIPTION',
      gone: true,
    });
  const endpoint = subscription?.endpoint;
  if (typeof endpoint !== 'string' || !URL.canParse(endpoint)) throw gone('endpoint is not a URL');
  const url = new URL(endpoint);
  if (!(url.protocol === 'https:' || (allowHttp && url.protocol === 'http:'))) {
    throw gone('endpoint is not an https: URL');
  }
  const { p256dh, auth } = subscription.keys ?? {};
  if (!base64url.safeParse(p256dh).success || decodedLength(p256dh) !== 65) {
    throw gone('keys.p256dh is not a P-256 public key');
  }
  if (!base64url.safeParse(auth).success || decodedLength(auth) < 16) {
    throw gone('keys.auth is not a 16-byte secret');
  }
  return url;
}

/** The response body for an error message, short; push services answer with a line of text or JSON. */
async function shortBody(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  return text.replace(/\s+/g, ' ').trim().slice(0, 200);
}

/**
 * The web push channel: VAPID-signed, aes128gcm-encrypted POSTs to each subscription's push service, with a
 * timeout on the whole request. HTTP 404/410 mean the subscription is gone (PermanentDeliveryError with
 * `gone: true`), 429/5xx and network failures are transient, other 4xx permanent.
 */
export function createPushChannel(options: PushChannelOptions): PushChannel {
  checkSubject(options.subject);
  checkVapidKeys(options.vapid, 'push channel');
  const vapidDetails = { subject: options.subject, ...options.vapid };
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const allowHttp = options.allowHttpEndpoints ?? false;
  return {
    publicKey: options.vapid.publicKey,
    async send(subscription, payload, sendOptions = {}) {
      const endpoint = checkSubscription(subscription, allowHttp);
      const body = JSON.stringify(payload);
      if (Buffer.byteLength(body) > MAX_PUSH_PAYLOAD_BYTES) {
        throw new PermanentDeliveryError('push', `payload is larger than ${MAX_PUSH_PAYLOAD_BYTES} bytes`, {
          code: 'EPAYLOADTOOLARGE',
        });
      }
      let request: ReturnType<typeof webpush.generateRequestDetails>;
      try {
        request = webpush.generateRequestDetails(subscription, body, {
          vapidDetails,
          TTL: sendOptions.ttlSeconds ?? options.ttlSeconds ?? DEFAULT_TTL_SECONDS,
          urgency: sendOptions.urgency ?? 'normal',
          contentEncoding: 'aes128gcm',
          ...(sendOptions.topic ? { topic: sendOptions.topic } : {}),
        });
      } catch (error) {
        // Our keys and options were checked up front; what is left to fail is the subscription's key material.
        throw new PermanentDeliveryError(
          'push',
          `cannot encrypt for this subscription: ${(error as Error).message.slice(0, 200)}`,
          { code: 'EINVALIDSUBSCRIPTION', gone: true },
        );
      }
      const headers = new Headers();
      for (const [name, value] of Object.entries(request.headers)) {
        // fetch computes Content-Length from the body itself.
        if (name.toLowerCase() !== 'content-length') headers.set(name, String(value));
      }
      let response: Response;
      try {
        response = await fetch(endpoint, {
          method: 'POST',
          headers,
          body: request.body ? new Uint8Array(request.body) : null,
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        throw networkDeliveryError('push', `push to ${endpoint.origin}`, error);
      }
      if (response.ok) {
        await response.body?.cancel();
        return { id: response.headers.get('location') };
      }
      const detail = `push service ${endpoint.origin} answered HTTP ${response.status}`;
      const text = await shortBody(response);
      const gone = response.status === 404 || response.status === 410;
      throw httpDeliveryError('push', response, text ? `${detail}: ${text}` : detail, {
        code: gone ? 'ESUBSCRIPTIONGONE' : undefined,
        gone,
      });
    },
  };
}
