import { createHash, randomUUID } from 'node:crypto';
import { describeInfra } from '@aiva/shared/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type GatewayUnderTest,
  startGateway,
  startUsers,
  type UsersUnderTest,
  usersTypeDefs,
} from '../helpers/stack.js';

// Persisted queries registered on one gateway are served by another that shares the Redis cache.
await describeInfra(
  'gateway cache on Redis',
  { envVar: 'REDIS_URL', defaultUrl: 'redis://127.0.0.1:6379' },
  (redisUrl) => {
    let users: UsersUnderTest;
    let first: GatewayUnderTest;
    let second: GatewayUnderTest;

    beforeAll(async () => {
      users = await startUsers();
      const subgraphs = [{ name: 'users', url: users.url, typeDefs: usersTypeDefs }];
      first = await startGateway(subgraphs, { REDIS_URL: redisUrl });
      second = await startGateway(subgraphs, { REDIS_URL: redisUrl });
    });

    afterAll(async () => {
      await first?.app.close();
      await second?.app.close();
      await users?.app.close();
    });

    it('shares automatic persisted queries between gateway instances', async () => {
      // A query text unique to this run, so an earlier run's registration cannot make the test pass.
      const query = `query Apq_${randomUUID().replaceAll('-', '')} { user(id: "01890000-0000-7000-8000-000000000000") { id } }`;
      const extensions = {
        persistedQuery: { version: 1, sha256Hash: createHash('sha256').update(query).digest('hex') },
      };
      const send = (url: string, body: Record<string, unknown>) =>
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }).then((r) => r.json() as Promise<{ data?: unknown; errors?: Array<{ message: string }> }>);
      expect((await send(second.url, { extensions })).errors?.[0]?.message).toBe('PersistedQueryNotFound');
      const registered = await send(first.url, { query, extensions });
      expect(registered.errors).toBeUndefined();
      expect(await send(second.url, { extensions })).toEqual(registered);
    });

    it('reports the Redis cache on /ready', async () => {
      const ready = (await (await fetch(`${first.base}/ready`)).json()) as { checks: Record<string, string> };
      expect(ready.checks).toEqual({ users: 'up', cache: 'up' });
    });
  },
);
