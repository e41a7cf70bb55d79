import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadSealingKeys, openSealed, openSqliteDatabase } from '@aiva/shared';
import { mailFileToken } from './smtp.js';
import { bearer, graphql } from './stack.js';

// For tests of a system started on the embedded defaults (a DATA_DIR, no NATS): the mail a notifications service
// would send, read from the machine's SQLite event log (`<DATA_DIR>/events.sqlite`) and its token opened with the
// sealing keys (`<DATA_DIR>/event-sealing-keys.json`), the way that service would.

export type MailEventType =
  | 'aiva.auth.password_reset.requested.v1'
  | 'aiva.auth.email_verification.requested.v1'
  | 'aiva.auth.email_change.requested.v1';

/** The opened token of the newest mail of `type` to `email`, or null when there is none (yet). */
export async function readMailToken(
  dataDir: string,
  type: MailEventType,
  email: string,
): Promise<string | null> {
  const file = join(dataDir, 'events.sqlite');
  if (!existsSync(file)) return null;
  const db = openSqliteDatabase(file, { readonly: true });
  let payloads: string[];
  try {
    payloads = db
      .prepare<[string], { payload: string }>(
        'SELECT payload FROM bus_events WHERE type = ? ORDER BY seq DESC',
      )
      .all(type)
      .map((row) => row.payload);
  } finally {
    db.close();
  }
  for (const payload of payloads) {
    const data = (JSON.parse(payload) as { data: { email: string; token: string } }).data;
    if (data.email.toLowerCase() !== email.toLowerCase()) continue;
    const keys = await loadSealingKeys({ file: join(dataDir, 'event-sealing-keys.json'), create: false });
    return openSealed(data.token, keys);
  }
  return null;
}

/**
 * Verifies the signed-in person's email through the gateway (request, read the mail, verifyEmail) and returns
 * fresh tokens from `refreshToken`: an address listed in AIVA_ADMIN_EMAILS is admin from these tokens on.
 */
export async function verifyEmailThrough(
  gatewayUrl: string,
  dataDir: string,
  tokens: { accessToken: string; refreshToken: string },
  email: string,
  timeoutMs = 10_000,
): Promise<{ accessToken: string; refreshToken: string }> {
  await graphql(gatewayUrl, 'mutation { requestEmailVerification }', {}, bearer(tokens.accessToken));
  const deadline = Date.now() + timeoutMs;
  // From the event log (the embedded bus), else from the mail notifications wrote (any bus, no SMTP_URL).
  const read = async () =>
    (await readMailToken(dataDir, 'aiva.auth.email_verification.requested.v1', email)) ??
    mailFileToken(dataDir, email, '/verify-email');
  let token = await read();
  while (!token) {
    if (Date.now() > deadline) throw new Error(`no verification mail to ${email} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    token = await read();
  }
  const verified = await graphql(gatewayUrl, 'mutation($t: String!) { verifyEmail(token: $t) }', {
    t: token,
  });
  if (verified.body.errors) throw new Error(`verifyEmail failed: ${JSON.stringify(verified.body.errors)}`);
  const refreshed = await graphql<{ refreshSession: { accessToken: string; refreshToken: string } }>(
    gatewayUrl,
    'mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }',
    { t: tokens.refreshToken },
  );
  if (!refreshed.body.data)
    throw new Error(`refreshSession failed: ${JSON.stringify(refreshed.body.errors)}`);
  return refreshed.body.data.refreshSession;
}
