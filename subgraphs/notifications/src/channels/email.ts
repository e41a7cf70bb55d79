import { randomBytes } from 'node:crypto';
import { access, constants, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Logger, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '@aiva/shared';
import nodemailer, { type NodemailerError, type SendMailOptions } from 'nodemailer';
import { z } from 'zod';
import {
  classifySmtpReply,
  type DeliveryError,
  networkErrorCode,
  PermanentDeliveryError,
  redactSecrets,
  TransientDeliveryError,
} from './errors.js';

// Email delivery. With an SMTP server configured (SMTP_URL) mails go out through it; without one (the embedded
// default on a bare machine) each mail is written as a real RFC 822 `.eml` file, so a developer can open the
// verification or reset mail in any mail client, and the flows work end to end without a mail server.

/** How long SMTP may take at each stage before the send fails (transient): the defaults of nodemailer are minutes. */
export interface SmtpTimeouts {
  /** Opening the TCP (or TLS) connection. Default 10 s. */
  connectionMs?: number;
  /** Waiting for the server's 220 greeting once connected. Default 10 s. */
  greetingMs?: number;
  /** Inactivity on an open connection (a server that stops answering). Default 30 s. */
  socketMs?: number;
}

export interface EmailChannelOptions {
  /** `smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://…:465` (TLS); unset: write `.eml` files. */
  smtpUrl?: string | undefined;
  /** The From of every mail: `AIVA <no-reply@example.com>` or a bare address. */
  from: string;
  /** Where `.eml` files go without SMTP (`.data/mail/` in the service); created (mode 0700) when needed. */
  mailDir: string;
  logger: Logger;
  /** Deadline of one whole SMTP send (connect to the server's final reply): transient ETIMEDOUT past it. Default 30 s. */
  timeoutMs?: number;
  timeouts?: SmtpTimeouts;
}

/** One mail: both parts are always sent (multipart/alternative). */
export interface EmailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
  /** Extra headers (e.g. `X-Notification-Id`, `List-Unsubscribe`); names are HTTP-style tokens, values one line. */
  headers?: Record<string, string>;
  /**
   * What makes the mail one message however often it is sent: it becomes the `Message-ID`
   * (`<key@sender's domain>`), so a mail sent again after a crash (SMTP accepted it, the process died before
   * recording that) is the same message, which mail systems collapse. Letters, digits, `.`, `_` and `-`.
   * Unset: nodemailer makes a random one.
   */
  idempotencyKey?: string;
}

export interface EmailChannel {
  /** `smtp` with a server, `file` for the embedded default. */
  readonly kind: 'smtp' | 'file';
  /** Where mails go, for the startup log: `smtps://host:465` (never the credentials) or the mail directory. */
  readonly target: string;
  /** Sends (or writes) one mail. Throws a TransientDeliveryError or a PermanentDeliveryError. */
  send(message: EmailMessage): Promise<{ messageId: string }>;
  /** Checks that mail can go out: connects and logs in to the SMTP server, or checks the mail directory is writable. */
  verify(): Promise<void>;
  /** Releases the transport. */
  close(): Promise<void>;
}

const DEFAULT_TIMEOUTS = { connectionMs: 10_000, greetingMs: 10_000, socketMs: 30_000 };
const DEFAULT_SEND_TIMEOUT_MS = 30_000;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const IDEMPOTENCY_KEY = /^[A-Za-z0-9._-]{1,128}$/;
const recipientSchema = z.email();

/** Rejects what no server would accept, before connecting: a malformed recipient, an unsafe extra header. */
function checkMessage(message: EmailMessage): void {
  if (!recipientSchema.safeParse(message.to).success) {
    throw new PermanentDeliveryError('email', 'invalid recipient address', { code: 'EENVELOPE' });
  }
  if (message.idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(message.idempotencyKey)) {
    throw new PermanentDeliveryError('email', 'invalid idempotency key', { code: 'EMESSAGE' });
  }
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (!HEADER_NAME.test(name) || /[\r\n]/.test(value)) {
      throw new PermanentDeliveryError('email', `invalid header ${JSON.stringify(name.slice(0, 60))}`, {
        code: 'EMESSAGE',
      });
    }
  }
}

/** The domain of the sender's address (`AIVA <no-reply@aiva.example.com>` → `aiva.example.com`). */
function senderDomain(from: string): string {
  const address = /<([^>]+)>/.exec(from)?.[1] ?? from;
  const domain = address.slice(address.lastIndexOf('@') + 1).trim();
  return /^[A-Za-z0-9.-]+$/.test(domain) ? domain : 'aiva.localhost';
}

function mailOptions(from: string, message: EmailMessage): SendMailOptions {
  return {
    from,
    to: message.to,
    subject: message.subject,
    text: message.text,
    html: message.html,
    headers: message.headers,
    ...(message.idempotencyKey ? { messageId: `<${message.idempotencyKey}@${senderDomain(from)}>` } : {}),
  };
}

/**
 * The DeliveryError for what nodemailer threw: an SMTP reply decides by its class (4xx transient, 5xx permanent),
 * a connection failure or timeout is transient, an envelope nodemailer itself refused is permanent. Messages
 * go through `redactSecrets` (the SMTP password must never show, whatever a server echoes back).
 */
export function smtpDeliveryError(error: unknown, secrets: readonly (string | undefined)[]): DeliveryError {
  const e = (error ?? {}) as NodemailerError;
  const reason = redactSecrets(e.message ?? String(error), secrets);
  if (typeof e.responseCode === 'number' && e.responseCode >= 400) {
    const code = String(e.responseCode);
    const message = `SMTP server refused${e.command ? ` ${e.command.split(' ')[0]}` : ''} with ${reason}`;
    return classifySmtpReply(e.responseCode) === 'permanent'
      ? new PermanentDeliveryError('email', message, { code, status: e.responseCode })
      : new TransientDeliveryError('email', message, { code, status: e.responseCode });
  }
  const network = networkErrorCode(error);
  if (network) {
    return new TransientDeliveryError('email', `SMTP connection failed (${network}): ${reason}`, {
      code: network,
    });
  }
  if (e.code === 'EENVELOPE') return new PermanentDeliveryError('email', reason, { code: e.code });
  return new TransientDeliveryError('email', `SMTP delivery failed: ${reason}`, { code: e.code });
}

/** The parts of an SMTP URL we need: where it points (for logs) and the secrets to keep out of messages. */
function parseSmtpUrl(smtpUrl: string): { target: string; secrets: string[] } {
  if (!URL.canParse(smtpUrl)) throw new RangeError('SMTP URL is not a valid URL');
  const url = new URL(smtpUrl);
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') {
    throw new RangeError('SMTP URL must start with smtp:// or smtps://');
  }
  if (!url.hostname) throw new RangeError('SMTP URL has no host');
  const user = safeDecode(url.username);
  const pass = safeDecode(url.password);
  // The password as it travels in AUTH LOGIN and AUTH PLAIN too, should a server or library echo the command.
  const base64 = (text: string) => Buffer.from(text).toString('base64');
  const secrets = pass ? [url.password, pass, base64(pass), base64(`\0${user}\0${pass}`)] : [];
  return { target: `${url.protocol}//${url.host}`, secrets };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function createSmtpChannel(options: EmailChannelOptions & { smtpUrl: string }): EmailChannel {
  const { target, secrets } = parseSmtpUrl(options.smtpUrl);
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const sendTimeoutMs = options.timeoutMs ?? DEFAULT_SEND_TIMEOUT_MS;
  const transport = nodemailer.createTransport({
    url: options.smtpUrl,
    connectionTimeout: timeouts.connectionMs,
    greetingTimeout: timeouts.greetingMs,
    socketTimeout: timeouts.socketMs,
  });
  return {
    kind: 'smtp',
    target,
    async send(message) {
      checkMessage(message);
      try {
        const info = await transport.sendMail({
          ...mailOptions(options.from, message),
          // The stage timeouts bound each wait; this bounds the sum (a server answering just slowly enough).
          signal: AbortSignal.timeout(sendTimeoutMs),
        });
        return { messageId: info.messageId };
      } catch (error) {
        throw smtpDeliveryError(error, secrets);
      }
    },
    async verify() {
      try {
        await transport.verify();
      } catch (error) {
        throw smtpDeliveryError(error, secrets);
      }
    },
    async close() {
      transport.close();
    },
  };
}

/** A file name that sorts by time and never collides: `20261127T023657123Z-1f2e3d4c5b6a.eml`. */
function mailFileName(now: Date): string {
  return `${now.toISOString().replace(/[-:.]/g, '')}-${randomBytes(6).toString('hex')}.eml`;
}

function createFileChannel(options: EmailChannelOptions): EmailChannel {
  // nodemailer builds the very message SMTP would carry (headers, Message-ID, both parts), with CRLF line ends.
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  const ensureDir = () => mkdir(options.mailDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  return {
    kind: 'file',
    target: options.mailDir,
    async send(message) {
      checkMessage(message);
      const info = await transport.sendMail(mailOptions(options.from, message));
      if (!Buffer.isBuffer(info.message))
        throw new Error('nodemailer did not return the message as a buffer');
      await ensureDir();
      // Mails carry reset and verification links: owner-only, and renamed into place so a reader never sees half.
      const file = join(options.mailDir, mailFileName(new Date()));
      const tmp = join(options.mailDir, `.${randomBytes(6).toString('hex')}.tmp`);
      await writeFile(tmp, info.message, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
      await rename(tmp, file);
      options.logger.info(
        { file, messageId: info.messageId },
        'email written to file (no SMTP server configured)',
      );
      return { messageId: info.messageId };
    },
    async verify() {
      await ensureDir();
      await access(options.mailDir, constants.W_OK);
    },
    async close() {
      transport.close();
    },
  };
}

/**
 * The email channel: SMTP through nodemailer when `smtpUrl` is set (with connection, greeting and socket
 * timeouts, and a deadline on the whole send), else the embedded default writing one `.eml` file per mail under `mailDir`.
 */
export function createEmailChannel(options: EmailChannelOptions): EmailChannel {
  if (!options.from?.trim()) throw new RangeError('from is required');
  const smtpUrl = options.smtpUrl?.trim();
  return smtpUrl ? createSmtpChannel({ ...options, smtpUrl }) : createFileChannel(options);
}
