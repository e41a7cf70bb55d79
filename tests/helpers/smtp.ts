import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type Spawned, spawnNode } from '../system/helpers/system.js';

/** A mail the SMTP sink received: its headers (lower-case names, unfolded) and the raw text. */
export interface ReceivedMail {
  file: string;
  headers: Record<string, string>;
  raw: string;
}

export interface SmtpSink {
  /** `smtp://127.0.0.1:<port>` */
  url: string;
  /** The mails received so far, oldest first. */
  mails(): ReceivedMail[];
  /** The mails to an address. */
  mailsTo(address: string): ReceivedMail[];
  stop(): Promise<void>;
}

/** Headers of a raw mail: the part before the first empty line, folded lines joined. */
export function headersOf(raw: string): Record<string, string> {
  const head = raw.split(/\r?\n\r?\n/, 1)[0] ?? '';
  const headers: Record<string, string> = {};
  let last = '';
  for (const line of head.split(/\r?\n/)) {
    if (/^\s/.test(line) && last) headers[last] += ` ${line.trim()}`;
    else {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      last = line.slice(0, colon).trim().toLowerCase();
      headers[last] = line.slice(colon + 1).trim();
    }
  }
  return headers;
}

/** The text of a quoted-printable body: soft line breaks joined and `=XX` decoded. */
export function decodeQuotedPrintable(text: string): string {
  return text
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/**
 * Starts the SMTP sink (`smtp-sink.ts`) as a process of its own on a spare port; `rejectFirst` mails are
 * answered 451 first.
 */
export async function startSmtpSink(options: { rejectFirst?: number } = {}): Promise<SmtpSink> {
  const dir = mkdtempSync(join(tmpdir(), 'aiva-smtp-'));
  const port = await freePort();
  const spawned: Spawned = spawnNode(['tests/helpers/smtp-sink.ts'], {
    ...process.env,
    SMTP_SINK_DIR: dir,
    SMTP_SINK_PORT: String(port),
    SMTP_SINK_REJECT_FIRST: String(options.rejectFirst ?? 0),
  });
  await spawned.waitForLine(/SMTP listening on/, 30_000);
  const mails = () =>
    readdirSync(dir)
      .filter((f) => f.endsWith('.eml'))
      .sort()
      .map((file) => {
        const raw = readFileSync(join(dir, file), 'utf8');
        return { file, headers: headersOf(raw), raw };
      });
  return {
    url: `smtp://127.0.0.1:${port}`,
    mails,
    mailsTo: (address) =>
      mails().filter((m) => (m.headers.to ?? '').toLowerCase().includes(address.toLowerCase())),
    async stop() {
      spawned.child.kill('SIGTERM');
      await spawned.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The `token` of the newest mail to `to` written by notifications' embedded mail default (`<DATA_DIR>/mail/*.eml`)
 * whose link goes to `path` (e.g. `/verify-email`); null when there is none (yet).
 */
export function mailFileToken(dataDir: string, to: string, path: string): string | null {
  const dir = join(dataDir, 'mail');
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => f.endsWith('.eml'))
      .sort()
      .reverse();
  } catch {
    return null;
  }
  for (const file of files) {
    const raw = readFileSync(join(dir, file), 'utf8');
    if (!(headersOf(raw).to ?? '').toLowerCase().includes(to.toLowerCase())) continue;
    const match = new RegExp(`${path}\\?token=([A-Za-z0-9_.~%-]+)`).exec(decodeQuotedPrintable(raw));
    if (match?.[1]) return decodeURIComponent(match[1]);
  }
  return null;
}
