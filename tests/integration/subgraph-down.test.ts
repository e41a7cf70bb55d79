import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GatewayUnderTest,
  graphql,
  postsTypeDefs,
  startGateway,
  startPosts,
  startUsers,
  usersTypeDefs,
} from '../helpers/stack.js';

let gateway: GatewayUnderTest;
let posts: Awaited<ReturnType<typeof startPosts>>;

beforeAll(async () => {
  // Compose with a users subgraph that then goes away: its port is closed when the gateway serves.
  const users = await startUsers();
  posts = await startPosts(() => ['01890000-0000-7000-8000-000000000001']);
  gateway = await startGateway([
    { name: 'users', url: users.url, typeDefs: usersTypeDefs },
    { name: 'posts', url: posts.url, typeDefs: postsTypeDefs },
  ]);
  await users.app.close();
});

afterAll(async () => {
  await gateway?.app.close();
  await posts?.server.close();
});

describe('a subgraph that is down', () => {
  it('gives a GraphQL error for its fields, not a crash', async () => {
    const result = await graphql(gateway.url, '{ users(first: 1) { totalCount } }');
    expect(result.status).toBe(200);
    expect(result.body.errors?.[0]).toMatchObject({
      message: 'The users service is unavailable',
      extensions: { code: 'INTERNAL_SERVER_ERROR', reason: 'SERVICE_UNAVAILABLE', serviceName: 'users' },
    });
    expect(JSON.stringify(result.body)).not.toMatch(/ECONNREFUSED|127\.0\.0\.1/);
  });

  it('still serves the fields of the subgraphs that are up', async () => {
    const result = await graphql<{ posts: Array<{ id: string; author: { email: string } | null }> }>(
      gateway.url,
      '{ posts { id } }',
    );
    expect(result.body).toEqual({ data: { posts: [{ id: 'p0' }] } });
  });

  it('says which subgraph is down on /ready', async () => {
    const ready = await fetch(`${gateway.base}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({
      status: 'not_ready',
      service: 'gateway',
      checks: { users: 'down', posts: 'up', cache: 'up' },
    });
  });

  it('keeps serving after the failures', async () => {
    const health = await fetch(`${gateway.base}/health`);
    expect(health.status).toBe(200);
  });
});
