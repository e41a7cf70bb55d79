import { randomUUID } from 'node:crypto';
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type Logger, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '@aiva/shared';
import { z } from 'zod';
import { httpDeliveryError, networkDeliveryError, PermanentDeliveryError } from './errors.js';

// SMS delivery through Twilio's REST API (one form-encoded POST per message), or, without Twilio credentials
// (the embedded default), one JSON line per message appended to a log file a developer can read the codes from.

export interface TwilioOptions {
  accountSid: string;
  /** Secret: sent only in the Authorization header, never logged nor put into an error message. */
  authToken: string;
  /** The sender: a Twilio number in E.164 form (`+15005550006`) or an alphanumeric sender ID. */
  from: string;
  /** Default `https://api.twilio.com` (tests point it at a local server). */
  baseUrl?: string;
}

export interface SmsChannelOptions {
  twilio?: TwilioOptions | undefined;
  /** Where messages go without Twilio: one JSON line each (mode 0600; it holds codes meant for one person). */
  logFile: string;
  logger: Logger;
  /** How long one request to Twilio may take in all. Default 10 s. */
  timeoutMs?: number;
}

export interface SmsMessage {
  /** The recipient in E.164 form: `+` and up to 15 digits. */
  to: string;
  body: string;
}

export interface SmsChannel {
  readonly kind: 'twilio' | 'file';
  /** Sends one message; `id` is Twilio's message SID (or a UUID for the log file). */
  send(message: SmsMessage): Promise<{ id: string }>;
}

const DEFAULT_BASE_URL = 'https://api.twilio.com';
const DEFAULT_TIMEOUT_MS = 10_000;
/** Twilio's own limit on the Body parameter. */
const MAX_BODY_LENGTH = 1600;
const E164 = /^\+[1-9]\d{1,14}$/;

/** Twilio's error document: `{ code, message, more_info, status }`. */
const twilioErrorSchema = z.object({
  code: z.number().optional(),
  message: z.string().optional(),
  status: z.number().optional(),
});
const twilioMessageSchema = z.object({ sid: z.string().min(1) });

function checkMessage(message: SmsMessage): void {
  if (!E164.test(message.to)) {
    throw new PermanentDeliveryError('sms', 'invalid recipient number (expected E.164, e.g. +15551234567)', {
      code: 'EINVALIDNUMBER',
    });
  }
  if (message.body.length === 0 || message.body.length > MAX_BODY_LENGTH) {
    throw new PermanentDeliveryError('sms', `message body must be 1 to ${MAX_BODY_LENGTH} characters`, {
      code: 'EBODY',
    });
  }
}

/** What Twilio said in a failure answer: its error code and message when the body is its JSON error document. */
async function twilioFailure(response: Response): Promise<{ code?: string; text: string }> {
  const raw = await response.text().catch(() => '');
  let parsed: z.infer<typeof twilioErrorSchema> | undefined;
  try {
    const result = twilioErrorSchema.safeParse(JSON.parse(raw));
    if (result.success) parsed = result.data;
  } catch {
    // not JSON (a proxy's error page): the status alone tells
  }
  const code = parsed?.code === undefined ? undefined : String(parsed.code);
  const detail = parsed?.message ?? raw.slice(0, 200);
  return {
    code,
    text: `Twilio answered HTTP ${response.status}${code ? ` (error ${code})` : ''}${detail ? `: ${detail}` : ''}`,
  };
}

function createTwilioChannel(twilio: TwilioOptions, timeoutMs: number): SmsChannel {
  if (!twilio.accountSid || !twilio.authToken || !twilio.from) {
    throw new RangeError('Twilio needs an account SID, an auth token and a sender');
  }
  const base = (twilio.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
  const url = `${base}/2010-04-01/Accounts/${encodeURIComponent(twilio.accountSid)}/Messages.json`;
  const authorization = `Basic ${Buffer.from(`${twilio.accountSid}:${twilio.authToken}`).toString('base64')}`;
  const secrets = [twilio.authToken, authorization.slice('Basic '.length)];
  return {
    kind: 'twilio',
    async send(message) {
      checkMessage(message);
      let response: Response;
      try {
        response = await fetch(url, {
          method: 'POST',
          headers: { authorization, accept: 'application/json' },
          body: new URLSearchParams({ To: message.to, From: twilio.from, Body: message.body }),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        throw networkDeliveryError('sms', 'Twilio request', error, secrets);
      }
      if (!response.ok) {
        const failure = await twilioFailure(response);
        throw httpDeliveryError('sms', response, failure.text, { secrets, code: failure.code });
      }
      const body = twilioMessageSchema.safeParse(await response.json().catch(() => null));
      if (!body.success) {
        // Accepted, but we cannot tell which message it became: not worth sending twice.
        throw new PermanentDeliveryError(
          'sms',
          `Twilio answered HTTP ${response.status} without a message sid`,
          {
            status: response.status,
          },
        );
      }
      return { id: body.data.sid };
    },
  };
}

function createLogFileChannel(options: SmsChannelOptions): SmsChannel {
  return {
    kind: 'file',
    async send(message) {
      checkMessage(message);
      const id = randomUUID();
      await mkdir(dirname(options.logFile), { recursive: true, mode: PRIVATE_DIR_MODE });
      const line = `${JSON.stringify({ id, at: new Date().toISOString(), to: message.to, body: message.body })}\n`;
      await appendFile(options.logFile, line, { mode: PRIVATE_FILE_MODE });
      options.logger.info(
        { file: options.logFile, id },
        'SMS written to the log file (Twilio not configured)',
      );
      return { id };
    },
  };
}

/**
 * The SMS channel: Twilio's Messages API when `twilio` is given (basic auth, form-encoded To/From/Body, a
 * timeout on the whole request), else the embedded default appending to `logFile`. Failures are
 * Transient/PermanentDeliveryErrors (HTTP 429/5xx and network failures transient, other 4xx permanent) whose
 * messages never hold the auth token.
 */
export function createSmsChannel(options: SmsChannelOptions): SmsChannel {
  if (options.twilio) return createTwilioChannel(options.twilio, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  return createLogFileChannel(options);
}
