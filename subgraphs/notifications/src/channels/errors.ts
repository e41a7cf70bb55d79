// Delivery failures of the channels, sorted into the two kinds a caller acts on: transient (try again later)
// and permanent (give up; for web push, `gone` also means "delete the subscription"). Every channel turns what
// its provider or the network said into one of these, with a message that never holds a secret.

/** The channel a delivery failed on. */
export type DeliveryChannel = 'email' | 'sms' | 'push';
/** What the caller does with a failure: retry later, or give up on this message. */
export type DeliveryErrorKind = 'transient' | 'permanent';

export interface DeliveryErrorDetails {
  /** The provider's or the socket's code: `ECONNREFUSED`, an SMTP reply code, Twilio's `21211`… */
  code?: string | undefined;
  /** The HTTP status (Twilio, web push) or the SMTP reply code, when the other side answered. */
  status?: number | undefined;
}

/** A failed delivery. Use `classifyDeliveryError` or the two subclasses to tell what to do next. */
export abstract class DeliveryError extends Error {
  abstract readonly kind: DeliveryErrorKind;
  readonly channel: DeliveryChannel;
  readonly code: string | undefined;
  readonly status: number | undefined;
  constructor(channel: DeliveryChannel, message: string, details: DeliveryErrorDetails = {}) {
    super(message);
    this.channel = channel;
    this.code = details.code;
    this.status = details.status;
  }
}

/** Worth trying again later: the network, a timeout, SMTP 4xx, HTTP 429 or 5xx. */
export class TransientDeliveryError extends DeliveryError {
  readonly kind = 'transient' as const;
  /** How long the provider asked us to wait (HTTP `Retry-After`), when it said so. */
  readonly retryAfterMs: number | undefined;
  constructor(
    channel: DeliveryChannel,
    message: string,
    details: DeliveryErrorDetails & { retryAfterMs?: number | undefined } = {},
  ) {
    super(channel, message, details);
    this.name = 'TransientDeliveryError';
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** Trying again would fail the same way: SMTP 5xx, an invalid address, HTTP 4xx other than 429. */
export class PermanentDeliveryError extends DeliveryError {
  readonly kind = 'permanent' as const;
  /** Web push only: the subscription no longer exists (404/410) or can never work; the caller deletes it. */
  readonly gone: boolean;
  constructor(
    channel: DeliveryChannel,
    message: string,
    details: DeliveryErrorDetails & { gone?: boolean | undefined } = {},
  ) {
    super(channel, message, details);
    this.name = 'PermanentDeliveryError';
    this.gone = details.gone ?? false;
  }
}

/** Socket-level codes (Node, nodemailer, undici) that mean the connection failed, not that we were refused. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ECONNECTION',
  'ESOCKET',
  'EDNS',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  originalCode?: unknown;
  responseCode?: unknown;
  statusCode?: unknown;
  cause?: unknown;
}

/** The socket-level code of an error or of its causes (fetch hides it in `cause`), if any. */
export function networkErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth++) {
    const e = current as ErrorLike;
    for (const code of [e.originalCode, e.code]) {
      if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    }
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'ETIMEDOUT';
    current = e.cause;
  }
  return undefined;
}

/** HTTP answers: 429 and 5xx are worth retrying, any other 4xx is not (the request itself is wrong). */
export function classifyHttpStatus(status: number): DeliveryErrorKind {
  return status === 429 || status >= 500 ? 'transient' : 'permanent';
}

/** SMTP replies: 4yz is a transient negative completion, 5yz a permanent one (RFC 5321 §4.2.1). */
export function classifySmtpReply(code: number): DeliveryErrorKind {
  return code >= 500 ? 'permanent' : 'transient';
}

/**
 * Transient or permanent, for any error a send may throw: a DeliveryError says so itself; otherwise an SMTP reply
 * code (nodemailer's `responseCode`), an HTTP `statusCode`, or a network failure decides. An invalid envelope
 * (nodemailer's EENVELOPE without a reply, e.g. no valid recipient) is permanent. Anything unrecognised counts as
 * transient: the caller's bounded retries end it, while a wrongly permanent verdict would drop a message for good.
 */
export function classifyDeliveryError(error: unknown): DeliveryErrorKind {
  if (error instanceof DeliveryError) return error.kind;
  const e = (error && typeof error === 'object' ? error : {}) as ErrorLike;
  if (typeof e.responseCode === 'number' && e.responseCode >= 400) return classifySmtpReply(e.responseCode);
  if (typeof e.statusCode === 'number' && e.statusCode >= 400) return classifyHttpStatus(e.statusCode);
  if (networkErrorCode(error)) return 'transient';
  if (e.code === 'EENVELOPE') return 'permanent';
  return 'transient';
}

/** True for a web push failure meaning the subscription is gone for good (delete it). */
export function isSubscriptionGone(error: unknown): boolean {
  return error instanceof PermanentDeliveryError && error.gone;
}

/** Both verdicts at once, in the shape a delivery dispatcher records: retry?, and delete the target? */
export function deliveryFailureKind(error: unknown): { transient: boolean; gone: boolean } {
  return { transient: classifyDeliveryError(error) === 'transient', gone: isSubscriptionGone(error) };
}

const REDACTED = '[redacted]';

/**
 * `text` with every secret replaced (also in its URL-encoded form) and any URL user info (`//user:pass@`)
 * stripped, so provider answers and library messages can be put into error messages safely.
 */
export function redactSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text.replace(/\/\/[^@/\s]*@/g, `//${REDACTED}@`);
  const variants = new Set<string>();
  for (const secret of secrets) {
    if (!secret) continue;
    variants.add(secret);
    variants.add(encodeURIComponent(secret));
    try {
      variants.add(decodeURIComponent(secret));
    } catch {
      // not URL-encoded: the raw form is enough
    }
  }
  // Longest first, so a secret containing another one is replaced whole.
  for (const variant of [...variants].sort((a, b) => b.length - a.length)) {
    if (variant.length > 0) out = out.split(variant).join(REDACTED);
  }
  return out;
}

/** The milliseconds an HTTP `Retry-After` header asks for (seconds or an HTTP date); undefined if absent/bad. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The DeliveryError for an HTTP failure answer of a provider: 429/5xx transient (with `Retry-After`), other
 * 4xx permanent. `detail` is redacted with `secrets` before it becomes part of the message.
 */
export function httpDeliveryError(
  channel: DeliveryChannel,
  response: { status: number; headers: Headers },
  detail: string,
  options: { secrets?: readonly (string | undefined)[]; code?: string | undefined; gone?: boolean } = {},
): DeliveryError {
  const message = redactSecrets(detail, options.secrets ?? []);
  const details = { status: response.status, code: options.code };
  if (classifyHttpStatus(response.status) === 'transient') {
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    return new TransientDeliveryError(channel, message, { ...details, retryAfterMs });
  }
  return new PermanentDeliveryError(channel, message, { ...details, gone: options.gone });
}

/**
 * The DeliveryError for a request that got no answer at all (refused, reset, timed out…): transient, since
 * nothing reached the provider. The message names the socket code when there is one.
 */
export function networkDeliveryError(
  channel: DeliveryChannel,
  what: string,
  error: unknown,
  secrets: readonly (string | undefined)[] = [],
): TransientDeliveryError {
  const code = networkErrorCode(error) ?? 'ENETWORK';
  const reason = error instanceof Error ? error.message : String(error);
  return new TransientDeliveryError(channel, redactSecrets(`${what} failed (${code}): ${reason}`, secrets), {
    code,
  });
}
