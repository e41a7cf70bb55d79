import { randomBytes } from 'node:crypto';
import { describeInfra } from '@aiva/shared/testing';
import { createClient } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisSessionStore } from '../src/store/session-redis.js';
import { makeSession, newHash, sessionStoreContract } from './session.store.contract.js';

/** Every run writes under its own prefix, deleted when the file is done. */
const prefix = `aiva-test:auth:${Date.now().toString(36)}${randomBytes(3).toString('hex')}:`;

await describeInfra(
  'Redis session store',
  { envVar: 'REDIS_URL', defaultUrl: 'redis://127.0.0.1:6379' },
  (url) => {
    let n = 0;
    const open = () => createRedisSessionStore({ url, keyPrefix: `${prefix}${++n}:` });

    afterAll(async () => {
      const client = createClient({ url });
      client.on('error', () => {});
      await client.connect();
      try {
        const keys: string[] = [];
        for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
          keys.push(...batch);
        }
        if (keys.length > 0) await client.del(keys);
      } finally {
        await client.close();
      }
    });

    sessionStoreContract('redis', open);

    describe('Redis specifics', () => {
      it('expires the session key at expiresAt and indexes it under its user', async () => {
        const store = await open();
        const inspector = createClient({ url });
        inspector.on('error', () => {});
        await inspector.connect();
        try {
          const session = makeSession({ expiresAt: new Date(Date.now() + 60_000) });
          await store.create(session);
          const keyPrefix = `${prefix}${n}:`;
          const ttl = await inspector.pTTL(`${keyPrefix}session:${session.id}`);
          expect(ttl).toBeGreaterThan(50_000);
          expect(ttl).toBeLessThanOrEqual(60_000);
          expect(await inspector.sMembers(`${keyPrefix}user-sessions:${session.userId}`)).toEqual([
            session.id,
          ]);
          expect(await inspector.pTTL(`${keyPrefix}user-sessions:${session.userId}`)).toBeGreaterThan(50_000);

          // A longer-lived second session extends the user index's expiry.
          const later = makeSession({
            userId: session.userId,
            expiresAt: new Date(Date.now() + 10 * 60_000),
          });
          await store.create(later);
          expect(await inspector.pTTL(`${keyPrefix}user-sessions:${session.userId}`)).toBeGreaterThan(
            9 * 60_000,
          );
        } finally {
          await inspector.close();
          await store.close();
        }
      });

      it('forgets ids of sessions that are gone when listing', async () => {
        const store = await open();
        const inspector = createClient({ url });
        inspector.on('error', () => {});
        await inspector.connect();
        try {
          const keyPrefix = `${prefix}${n}:`;
          const live = makeSession();
          const gone = makeSession({ userId: live.userId });
          await store.create(live);
          await store.create(gone);
          await inspector.del(`${keyPrefix}session:${gone.id}`);

          expect((await store.listActiveForUser(live.userId, new Date())).map((s) => s.id)).toEqual([
            live.id,
          ]);
          expect(await inspector.sMembers(`${keyPrefix}user-sessions:${live.userId}`)).toEqual([live.id]);
          expect(await store.revokeAllForUser(live.userId, 'x', new Date())).toBe(1);
        } finally {
          await inspector.close();
          await store.close();
        }
      });

      it('rotates after the script cache was flushed', async () => {
        const store = await open();
        const inspector = createClient({ url });
        inspector.on('error', () => {});
        await inspector.connect();
        try {
          const session = makeSession();
          await store.create(session);
          await inspector.scriptFlush();
          const next = newHash();
          expect((await store.rotate(session.id, session.tokenHash, next, new Date()))?.tokenHash).toBe(next);
        } finally {
          await inspector.close();
          await store.close();
        }
      });
    });
  },
);

describe('Redis session store without a server', () => {
  it('rejects within the connect timeout', async () => {
    await expect(
      createRedisSessionStore({ url: 'redis://127.0.0.1:9', connectTimeoutMs: 300 }),
    ).rejects.toThrow();
  });
});
