import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { launchStack } from '../src/launch/launcher.js';
import { graphql, silentLogger } from './helpers/stack.js';

const dataDir = mkdtempSync(join(tmpdir(), 'aiva-launch-'));
const env = { USERS_PORT: '0', GATEWAY_PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'silent' };

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('launchStack (pnpm start)', () => {
  it('runs users and the gateway in one process on the embedded defaults, and data survives a restart', async () => {
    const first = await launchStack({ env, logger: silentLogger });
    let id: string;
    try {
      expect(first.gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/graphql$/);
      const created = await graphql<{ createUser: { id: string } }>(
        first.gatewayUrl,
        'mutation { createUser(input: { email: "persist@example.test", username: "persist", firstName: "P", lastName: "Q" }) { id } }',
      );
      expect(created.body.errors).toBeUndefined();
      id = created.body.data!.createUser.id;
      const ready = await fetch(first.gatewayUrl.replace('/graphql', '/ready'));
      expect(ready.status).toBe(200);
    } finally {
      await first.stop();
    }
    // Stopped means stopped: the port no longer answers.
    await expect(fetch(first.gatewayUrl, { method: 'POST' })).rejects.toThrow();

    const second = await launchStack({ env, logger: silentLogger });
    try {
      const read = await graphql<{ user: { email: string } | null }>(
        second.gatewayUrl,
        'query($id: ID!) { user(id: $id) { email } }',
        { id },
      );
      expect(read.body.data?.user?.email).toBe('persist@example.test');
    } finally {
      await second.stop();
    }
  });
});
