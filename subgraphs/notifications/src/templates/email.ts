import { z } from 'zod';
import { html, type SafeHtml } from './html.js';
import { actionButton, type EmailContext, htmlDocument, paragraphs, textDocument } from './layout.js';

// The emails of the notifications service, one template per category. Each declares its variables (zod: checked
// before rendering, so a missing link fails loudly instead of mailing "undefined") and renders a subject, a plain
// text part and an HTML part. HTML is built with `html`, which escapes every interpolated value.

export type { EmailContext } from './layout.js';

/** A rendered email, ready for the email channel. */
export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

const isHttpUrl = (value: string) => {
  if (!URL.canParse(value)) return false;
  const { protocol } = new URL(value);
  return protocol === 'https:' || protocol === 'http:';
};
/** Links in mails: http(s) only (a `javascript:` link must never reach an inbox). */
const httpUrl = z.string().trim().refine(isHttpUrl, 'expected an http(s) URL');
const moment = z.coerce.date();
const shortText = z.string().trim().min(1).max(200);

/** A date as mail readers everywhere understand it, independent of the server's time zone. */
export function formatMailDate(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

interface TemplateParts {
  subject: string;
  /** The heading of the HTML part (also its <title>). */
  title: string;
  /** Paragraphs of the text part (false/undefined ones are left out). */
  text: (string | false | undefined)[];
  /** The content of the HTML part, between the common header and footer. */
  html: SafeHtml;
}

interface EmailTemplate<Schema extends z.ZodType> {
  vars: Schema;
  render(vars: z.output<Schema>, context: EmailContext): TemplateParts;
}

const template = <Schema extends z.ZodType>(t: EmailTemplate<Schema>) => t;

/** Every category and its template. */
export const EMAIL_TEMPLATES = {
  welcome: template({
    vars: z.object({ name: z.string().trim().max(200).optional() }),
    render: ({ name }, { appName, appUrl }) => {
      const greeting = name ? `Hi ${name},` : 'Hi,';
      const intro = `Welcome to ${appName}! Your account is ready.`;
      return {
        subject: `Welcome to ${appName}`,
        title: `Welcome to ${appName}`,
        text: [greeting, intro, `Open ${appName}: ${appUrl}`],
        html: html`${paragraphs(`${greeting}\n\n${intro}`)}${actionButton(`Open ${appName}`, appUrl)}`,
      };
    },
  }),

  password_reset: template({
    vars: z.object({ resetUrl: httpUrl, expiresAt: moment }),
    render: ({ resetUrl, expiresAt }, { appName }) => {
      const intro = `Someone asked to reset the password of your ${appName} account. If it was you, choose a new password with this link:`;
      const expiry = `The link expires at ${formatMailDate(expiresAt)}.`;
      const ignore = 'If you did not ask for this, ignore this email: your password stays as it is.';
      return {
        subject: `Reset your ${appName} password`,
        title: 'Reset your password',
        text: [intro, resetUrl, expiry, ignore],
        html: html`${paragraphs(intro)}${actionButton('Choose a new password', resetUrl)}${paragraphs(
          `${expiry}\n\n${ignore}`,
        )}`,
      };
    },
  }),

  email_verification: template({
    vars: z.object({ verifyUrl: httpUrl, expiresAt: moment }),
    render: ({ verifyUrl, expiresAt }, { appName }) => {
      const intro = `Please confirm that this is your email address for ${appName}:`;
      const expiry = `The link expires at ${formatMailDate(expiresAt)}.`;
      const ignore = `If you did not sign up for ${appName}, ignore this email.`;
      return {
        subject: `Verify your email address for ${appName}`,
        title: 'Verify your email address',
        text: [intro, verifyUrl, expiry, ignore],
        html: html`${paragraphs(intro)}${actionButton('Verify my email address', verifyUrl)}${paragraphs(
          `${expiry}\n\n${ignore}`,
        )}`,
      };
    },
  }),

  /** To the new address of an email change: confirming the link makes it the account's address. */
  email_change: template({
    vars: z.object({ confirmUrl: httpUrl, expiresAt: moment }),
    render: ({ confirmUrl, expiresAt }, { appName }) => {
      const intro = `Someone asked to use this email address for a ${appName} account. If it was you, confirm the change with this link:`;
      const expiry = `The link expires at ${formatMailDate(expiresAt)}. Until then the account keeps its current address.`;
      const ignore = 'If you did not ask for this, ignore this email: nothing changes.';
      return {
        subject: `Confirm your new email address for ${appName}`,
        title: 'Confirm your new email address',
        text: [intro, confirmUrl, expiry, ignore],
        html: html`${paragraphs(intro)}${actionButton('Confirm my new address', confirmUrl)}${paragraphs(
          `${expiry}\n\n${ignore}`,
        )}`,
      };
    },
  }),

  new_sign_in: template({
    vars: z.object({
      time: moment,
      client: z.string().trim().max(300).optional(),
      ip: z.string().trim().max(100).optional(),
    }),
    render: ({ time, client, ip }, { appName, appUrl }) => {
      const intro = `Your ${appName} account was just signed in to.`;
      const facts = [
        `When: ${formatMailDate(time)}`,
        client && `Device: ${client}`,
        ip && `IP address: ${ip}`,
      ].filter((fact): fact is string => Boolean(fact));
      const advice = 'If this was you, there is nothing to do. If not, change your password right away:';
      return {
        subject: `New sign-in to your ${appName} account`,
        title: 'New sign-in to your account',
        text: [intro, facts.join('\n'), `${advice} ${appUrl}`],
        html: html`${paragraphs(`${intro}\n\n${facts.join('\n')}\n\n${advice}`)}${actionButton(
          `Open ${appName}`,
          appUrl,
        )}`,
      };
    },
  }),

  generic: template({
    vars: z.object({
      title: shortText,
      body: z.string().trim().min(1).max(20_000),
      /** An optional link the mail points to, shown as a button. */
      actionUrl: httpUrl.optional(),
      actionLabel: shortText.optional(),
    }),
    render: ({ title, body, actionUrl, actionLabel }) => ({
      subject: title,
      title,
      text: [body, actionUrl && `${actionLabel ?? 'Open'}: ${actionUrl}`],
      html: html`${paragraphs(body)}${actionUrl && actionButton(actionLabel ?? 'Open', actionUrl)}`,
    }),
  }),
} satisfies Record<string, EmailTemplate<z.ZodType>>;

/** The categories there are templates for. */
export type EmailCategory = keyof typeof EMAIL_TEMPLATES;
/** The variables a category takes (dates as Date, ISO string or epoch ms). */
export type EmailVars<C extends EmailCategory> = z.input<(typeof EMAIL_TEMPLATES)[C]['vars']>;

export const EMAIL_CATEGORIES = Object.keys(EMAIL_TEMPLATES) as EmailCategory[];

/** True when `value` names a category with a template. */
export function isEmailCategory(value: string): value is EmailCategory {
  return Object.hasOwn(EMAIL_TEMPLATES, value);
}

const contextSchema = z.object({ appName: shortText, appUrl: httpUrl });

/** One line, so a value can never start a new header (nodemailer encodes the rest). */
const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

/**
 * Subject, text part and HTML part of a mail of `category`. The variables are checked first: a missing or
 * malformed one (a link that is not http(s), a date that is not one) throws a RangeError naming the field,
 * never its value.
 */
export function renderEmail<C extends EmailCategory>(
  category: C,
  vars: EmailVars<C>,
  context: EmailContext,
): RenderedEmail {
  if (!isEmailCategory(category)) throw new RangeError(`unknown email category "${String(category)}"`);
  const ctx = parseOrThrow(contextSchema, context, 'email context');
  const chosen = EMAIL_TEMPLATES[category] as EmailTemplate<z.ZodType>;
  const parsed = parseOrThrow(chosen.vars, vars, `variables of email "${category}"`);
  const parts = chosen.render(parsed, ctx);
  return {
    subject: oneLine(parts.subject),
    text: textDocument(ctx, parts.text),
    html: htmlDocument(ctx, parts.title, parts.html),
  };
}

function parseOrThrow<Schema extends z.ZodType>(
  schema: Schema,
  value: unknown,
  what: string,
): z.output<Schema> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const where = result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  throw new RangeError(`invalid ${what}: ${where.join('; ')}`);
}
