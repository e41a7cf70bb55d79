import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { launchStack } from '../src/launch/launcher.js';
import { bearer, graphql, silentLogger } from './helpers/stack.js';

const dataDir = mkdtempSync(join(tmpdir(), 'aiva-launch-'));
const env = { AUTH_PORT: '0', USERS_PORT: '0', GATEWAY_PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'silent' };
const ME = '{ me { id email username firstName } }';

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('launchStack (pnpm start)', () => {
  it('runs auth, users and the gateway in one process on the embedded defaults; data and keys survive a restart', async () => {
    const first = await launchStack({ env, logger: silentLogger });
    let accessToken: string;
    let id: string;
    try {
      expect(first.gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/graphql$/);
      const signedUp = await graphql<{ signUp: { accessToken: string; user: { id: string } } }>(
        first.gatewayUrl,
        'mutation { signUp(input: { email: "persist@example.test", password: "a long password", username: "persist", firstName: "P", lastName: "Q" }) { accessToken user { id } } }',
      );
      expect(signedUp.body.errors).toBeUndefined();
      ({ accessToken } = signedUp.body.data!.signUp);
      id = signedUp.body.data!.signUp.user.id;
      const ready = await fetch(first.gatewayUrl.replace('/graphql', '/ready'));
      expect(await ready.json()).toMatchObject({ status: 'ready', checks: { auth: 'up', users: 'up' } });
    } finally {
      await first.stop();
    }
    // Stopped means stopped: the port no longer answers.
    await expect(fetch(first.gatewayUrl, { method: 'POST' })).rejects.toThrow();

    const second = await launchStack({ env, logger: silentLogger });
    try {
      // The signing key persisted: the token from before the restart still verifies, and the profile is there.
      const me = await graphql<{ me: { id: string; email: string } | null }>(
        second.gatewayUrl,
        ME,
        {},
        bearer(accessToken),
      );
      expect(me.body.data?.me).toEqual({
        id,
        email: 'persist@example.test',
        username: 'persist',
        firstName: 'P',
      });
      const signIn = await graphql(
        second.gatewayUrl,
        'mutation { signIn(input: { email: "persist@example.test", password: "a long password" }) { user { id } } }',
      );
      expect(signIn.body).toEqual({ data: { signIn: { user: { id } } } });
    } finally {
      await second.stop();
    }
  });
});
