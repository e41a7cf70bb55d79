import { describe, expect, it } from 'vitest';
import { EMAIL_CATEGORIES, escapeHtml, html, renderEmail } from '../../src/templates/index.js';

const CONTEXT = { appName: 'AIVA', appUrl: 'https://aiva.example.com' };
const EXPIRES = new Date('2026-11-27T04:30:00Z');
const HOSTILE = `<script>alert("x")</script> & 'co'`;

describe('html', () => {
  it('escapes every interpolated value but keeps nested html pieces', () => {
    const inner = html`<b>${HOSTILE}</b>`;
    const outer = html`<p title="${HOSTILE}">${inner}${[html`<i>${'<a>'}</i>`]}${undefined}${false}</p>`;
    expect(outer.value).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;">' +
        '<b>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;</b><i>&lt;a&gt;</i></p>',
    );
    expect(escapeHtml(42)).toBe('42');
  });
});

describe('renderEmail', () => {
  it('renders every category with a subject, a text part and an HTML part', () => {
    const vars = {
      welcome: { name: 'Ada' },
      password_reset: { resetUrl: 'https://aiva.example.com/reset?token=abc', expiresAt: EXPIRES },
      email_verification: { verifyUrl: 'https://aiva.example.com/verify?token=def', expiresAt: EXPIRES },
      email_change: {
        confirmUrl: 'https://aiva.example.com/confirm-email-change?token=ghi',
        expiresAt: EXPIRES,
      },
      new_sign_in: { time: EXPIRES, client: 'Firefox on Linux', ip: '203.0.113.7' },
      generic: { title: 'Hello', body: 'First line\nsecond line\n\nNew paragraph' },
    } as const;
    for (const category of EMAIL_CATEGORIES) {
      const mail = renderEmail(category, vars[category], CONTEXT);
      expect(mail.subject.length, category).toBeGreaterThan(0);
      expect(mail.text, category).toContain('https://aiva.example.com');
      expect(mail.html, category).toMatch(/^<!doctype html>/);
      expect(mail.html, category).toContain('<a class="brand" href="https://aiva.example.com">AIVA</a>');
    }
    expect(renderEmail('welcome', { name: 'Ada' }, CONTEXT).subject).toBe('Welcome to AIVA');
    const signIn = renderEmail('new_sign_in', vars.new_sign_in, CONTEXT);
    expect(signIn.text).toContain('When: 2026-11-27 04:30 UTC');
    expect(signIn.text).toContain('Device: Firefox on Linux');
    expect(signIn.html).toContain('IP address: 203.0.113.7');
    const generic = renderEmail('generic', vars.generic, CONTEXT);
    expect(generic.html).toContain('<p>First line<br>second line</p>');
    expect(generic.html).toContain('<p>New paragraph</p>');
  });

  it('puts the action link into both parts, escaped in HTML and verbatim in text', () => {
    const resetUrl = 'https://aiva.example.com/reset?token=a1b2&lang=en';
    const mail = renderEmail('password_reset', { resetUrl, expiresAt: EXPIRES.toISOString() }, CONTEXT);
    expect(mail.subject).toBe('Reset your AIVA password');
    expect(mail.text).toContain(`\n\n${resetUrl}\n\n`);
    expect(mail.text).toContain('expires at 2026-11-27 04:30 UTC');
    expect(mail.html).toContain('href="https://aiva.example.com/reset?token=a1b2&amp;lang=en"');
    expect(mail.html).not.toContain('token=a1b2&lang');

    const verifyUrl = 'https://aiva.example.com/verify?token=zz';
    const verify = renderEmail('email_verification', { verifyUrl, expiresAt: EXPIRES.getTime() }, CONTEXT);
    expect(verify.text).toContain(verifyUrl);
    expect(verify.html).toContain(`href="${verifyUrl}"`);

    const confirmUrl = 'https://aiva.example.com/confirm-email-change?token=ghi';
    const change = renderEmail('email_change', { confirmUrl, expiresAt: EXPIRES.toISOString() }, CONTEXT);
    expect(change.subject).toBe('Confirm your new email address for AIVA');
    expect(change.text).toContain(confirmUrl);
    expect(change.html).toContain(`href="${confirmUrl}"`);
  });

  it('escapes every interpolated value in the HTML part, and keeps the subject on one line', () => {
    const welcome = renderEmail('welcome', { name: HOSTILE }, { ...CONTEXT, appName: 'A<b>IVA' });
    expect(welcome.html).not.toContain('<script>');
    expect(welcome.html).not.toContain('A<b>IVA');
    expect(welcome.html).toContain(
      'Hi &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;,',
    );
    expect(welcome.html).toContain('<title>Welcome to A&lt;b&gt;IVA</title>');
    expect(welcome.text).toContain(`Hi ${HOSTILE},`);

    const generic = renderEmail(
      'generic',
      { title: 'Line one\r\nBcc: victim@example.com', body: `<img src=x onerror=alert(1)>\n${HOSTILE}` },
      CONTEXT,
    );
    expect(generic.subject).toBe('Line one Bcc: victim@example.com');
    expect(generic.html).not.toMatch(/<img|<script/);
    expect(generic.html).toContain('&lt;img src=x onerror=alert(1)&gt;<br>&lt;script&gt;');

    const signIn = renderEmail('new_sign_in', { time: EXPIRES, client: '<svg onload=x>' }, CONTEXT);
    expect(signIn.html).toContain('Device: &lt;svg onload=x&gt;');
    expect(signIn.text).not.toContain('IP address');
  });

  it('refuses links that are not http(s) and missing variables, naming the field only', () => {
    expect(() =>
      renderEmail('password_reset', { resetUrl: 'javascript:alert(1)', expiresAt: EXPIRES }, CONTEXT),
    ).toThrow(/resetUrl: expected an http\(s\) URL/);
    expect(() =>
      renderEmail('email_verification', { verifyUrl: 'https://x.example' } as never, CONTEXT),
    ).toThrow(/expiresAt/);
    expect(() =>
      renderEmail('generic', { title: 'T', body: 'B' }, { ...CONTEXT, appUrl: 'ftp://x' }),
    ).toThrow(/appUrl/);
    expect(() => renderEmail('nope' as never, {} as never, CONTEXT)).toThrow(/unknown email category/);
    const secretLink = 'javascript:steal("tok-123")';
    const render = () => renderEmail('password_reset', { resetUrl: secretLink, expiresAt: EXPIRES }, CONTEXT);
    expect(render).toThrow(RangeError);
    expect(render).not.toThrow(/tok-123/);
  });
});
