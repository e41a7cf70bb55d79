import { describe, expect, it } from 'vitest';
import {
  classifyDeliveryError,
  classifyHttpStatus,
  deliveryFailureKind,
  isSubscriptionGone,
  PermanentDeliveryError,
  parseRetryAfter,
  redactSecrets,
  smtpDeliveryError,
  TransientDeliveryError,
} from '../../src/channels/index.js';

const withProps = (message: string, props: Record<string, unknown>) =>
  Object.assign(new Error(message), props);

describe('classifyDeliveryError', () => {
  it('uses the verdict of a DeliveryError', () => {
    expect(classifyDeliveryError(new TransientDeliveryError('sms', 'x'))).toBe('transient');
    expect(classifyDeliveryError(new PermanentDeliveryError('push', 'x', { gone: true }))).toBe('permanent');
  });

  it('sorts SMTP replies by class, HTTP statuses by 429/5xx vs other 4xx', () => {
    expect(classifyDeliveryError(withProps('greylisted', { responseCode: 451 }))).toBe('transient');
    expect(classifyDeliveryError(withProps('no mailbox', { responseCode: 550 }))).toBe('permanent');
    expect(classifyDeliveryError(withProps('limited', { statusCode: 429 }))).toBe('transient');
    expect(classifyDeliveryError(withProps('down', { statusCode: 503 }))).toBe('transient');
    expect(classifyDeliveryError(withProps('gone', { statusCode: 410 }))).toBe('permanent');
    expect([400, 401, 403, 404, 413].map(classifyHttpStatus)).toEqual(Array(5).fill('permanent'));
  });

  it('counts network failures as transient, wherever the code sits (fetch keeps it in cause)', () => {
    for (const code of ['ECONNREFUSED', 'ETIMEDOUT', 'ECONNRESET', 'ECONNECTION', 'UND_ERR_SOCKET']) {
      expect(classifyDeliveryError(withProps('x', { code })), code).toBe('transient');
    }
    const fetchFailure = new TypeError('fetch failed', {
      cause: withProps('other side closed', { code: 'UND_ERR_SOCKET' }),
    });
    expect(classifyDeliveryError(fetchFailure)).toBe('transient');
    expect(classifyDeliveryError(new DOMException('timed out', 'TimeoutError'))).toBe('transient');
    expect(classifyDeliveryError(withProps('No recipients defined', { code: 'EENVELOPE' }))).toBe(
      'permanent',
    );
    expect(isSubscriptionGone(new PermanentDeliveryError('push', 'x'))).toBe(false);
    expect(deliveryFailureKind(new PermanentDeliveryError('push', 'x', { gone: true }))).toEqual({
      transient: false,
      gone: true,
    });
    expect(deliveryFailureKind(new Error('unknown'))).toEqual({ transient: true, gone: false });
  });

  it('turns nodemailer errors into delivery errors without the password', () => {
    const refused = smtpDeliveryError(
      withProps('connect ECONNREFUSED 10.0.0.1:587', { code: 'ESOCKET', originalCode: 'ECONNREFUSED' }),
      [],
    );
    expect(refused).toBeInstanceOf(TransientDeliveryError);
    expect(refused.code).toBe('ECONNREFUSED');
    const auth = smtpDeliveryError(
      withProps('Invalid login: 535 user:hunter2 rejected', {
        code: 'EAUTH',
        responseCode: 535,
        command: 'AUTH PLAIN',
      }),
      ['hunter2'],
    );
    expect(auth).toBeInstanceOf(PermanentDeliveryError);
    expect(auth.message).toBe('SMTP server refused AUTH with Invalid login: 535 user:[redacted] rejected');
  });
});

describe('redactSecrets', () => {
  it('removes secrets in raw and URL-encoded form, and URL user info', () => {
    const text = 'smtp://me:p%40ss@host failed; p@ss; token abc/def+ and abc%2Fdef%2B';
    expect(redactSecrets(text, ['p@ss', 'abc/def+', undefined, ''])).toBe(
      'smtp://[redacted]@host failed; [redacted]; token [redacted] and [redacted]',
    );
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('120')).toBe(120_000);
    expect(parseRetryAfter('Fri, 27 Nov 2026 03:00:30 GMT', Date.parse('2026-11-27T03:00:00Z'))).toBe(30_000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});
