import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  adminGraphql,
  adminHeaders,
  bearer,
  type GatewayUnderTest,
  graphql,
  postsTypeDefs,
  startGateway,
  startPosts,
  startUsers,
  tokens,
  type UsersUnderTest,
  usersTypeDefs,
} from '../helpers/stack.js';

const CREATE = `mutation Create($input: CreateUserInput!) {
  createUser(input: $input) { id email username firstName lastName displayName createdAt updatedAt }
}`;
const LIST = `query List($first: Int, $after: String) {
  users(first: $first, after: $after) { totalCount edges { cursor node { id username } } pageInfo { hasNextPage endCursor } }
}`;

type User = {
  id: string;
  email: string;
  username: string;
  displayName: string;
  createdAt: string;
  updatedAt: string;
};

let users: UsersUnderTest;
let posts: Awaited<ReturnType<typeof startPosts>>;
let gateway: GatewayUnderTest;
let authorIds: string[] = [];
let seq = 0;

function newUserInput(overrides: Record<string, unknown> = {}) {
  seq++;
  return {
    email: `person${seq}@example.test`,
    username: `person_${seq}`,
    firstName: 'Ada',
    lastName: 'Lovelace',
    ...overrides,
  };
}

async function createUser(overrides: Record<string, unknown> = {}) {
  const result = await adminGraphql<{ createUser: User }>(gateway.url, CREATE, {
    input: newUserInput(overrides),
  });
  expect(result.body.errors).toBeUndefined();
  return result.body.data!.createUser;
}

async function totalCount(): Promise<number> {
  const result = await adminGraphql<{ users: { totalCount: number } }>(
    gateway.url,
    '{ users(first: 1) { totalCount } }',
  );
  return result.body.data!.users.totalCount;
}

beforeAll(async () => {
  users = await startUsers();
  posts = await startPosts(() => authorIds);
  gateway = await startGateway(
    [
      { name: 'users', url: users.url, typeDefs: usersTypeDefs },
      { name: 'posts', url: posts.url, typeDefs: postsTypeDefs },
    ],
    { BODY_LIMIT_BYTES: String(64 * 1024), CORS_ORIGINS: 'https://app.example.test' },
  );
});

afterAll(async () => {
  await gateway?.app.close();
  await posts?.server.close();
  await users?.app.close();
});

describe('users through the gateway', () => {
  it('creates a user and reads it back by id', async () => {
    const created = await createUser({ displayName: null });
    expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.displayName).toBe('Ada Lovelace');
    expect(new Date(created.createdAt).toISOString()).toBe(created.createdAt);
    const read = await adminGraphql<{ user: User }>(
      gateway.url,
      'query($id: ID!) { user(id: $id) { id email username } }',
      {
        id: created.id,
      },
    );
    expect(read.body.data?.user).toEqual({
      id: created.id,
      email: created.email,
      username: created.username,
    });
  });

  it('returns null for an unknown id', async () => {
    const read = await adminGraphql(gateway.url, 'query($id: ID!) { user(id: $id) { id } }', {
      id: '01890000-0000-7000-8000-000000000000',
    });
    expect(read.body).toEqual({ data: { user: null } });
  });

  it('updates only the given fields', async () => {
    const created = await createUser();
    const result = await adminGraphql<{ updateUser: User & { firstName: string; lastName: string } }>(
      gateway.url,
      'mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id email firstName lastName displayName updatedAt } }',
      { id: created.id, input: { firstName: 'Grace', displayName: 'Amazing Grace' } },
    );
    const updated = result.body.data!.updateUser;
    expect(updated).toMatchObject({
      email: created.email,
      firstName: 'Grace',
      lastName: 'Lovelace',
      displayName: 'Amazing Grace',
    });
    expect(updated.updatedAt >= created.updatedAt).toBe(true);
  });

  it('deletes a user', async () => {
    const created = await createUser();
    const deleted = await adminGraphql(gateway.url, 'mutation($id: ID!) { deleteUser(id: $id) }', {
      id: created.id,
    });
    expect(deleted.body).toEqual({ data: { deleteUser: true } });
    const read = await adminGraphql(gateway.url, 'query($id: ID!) { user(id: $id) { id } }', {
      id: created.id,
    });
    expect(read.body).toEqual({ data: { user: null } });
  });

  it('pages through users with Relay cursors in creation order', async () => {
    for (let i = 0; i < 5; i++) await createUser();
    const total = await totalCount();
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const page: Awaited<
        ReturnType<
          typeof graphql<{
            users: {
              totalCount: number;
              edges: Array<{ cursor: string; node: { id: string } }>;
              pageInfo: { hasNextPage: boolean; endCursor: string | null };
            };
          }>
        >
      > = await adminGraphql(gateway.url, LIST, { first: 2, after });
      const connection = page.body.data!.users;
      expect(connection.totalCount).toBe(total);
      expect(connection.edges.length).toBeLessThanOrEqual(2);
      seen.push(...connection.edges.map((e) => e.node.id));
      expect(connection.pageInfo.endCursor).toBe(connection.edges.at(-1)?.cursor ?? null);
      after = connection.pageInfo.hasNextPage ? connection.pageInfo.endCursor : null;
      pages++;
    } while (after && pages < 100);
    expect(seen).toHaveLength(total);
    expect(new Set(seen).size).toBe(total);
    expect([...seen].sort()).toEqual(seen);
  });

  it('resolves User entities for another subgraph with one store query per _entities call', async () => {
    const a = await createUser();
    const b = await createUser();
    authorIds = [a.id, b.id, a.id, '01890000-0000-7000-8000-00000000dead'];
    const findByIds = vi.spyOn(users.store, 'findByIds');
    try {
      const result = await adminGraphql<{
        posts: Array<{ id: string; author: { email: string; displayName: string } | null }>;
      }>(gateway.url, '{ posts { id author { email displayName } } }');
      const got = result.body.data?.posts ?? [];
      expect(got.slice(0, 3).map((p) => p.author?.email)).toEqual([a.email, b.email, a.email]);
      expect(findByIds).toHaveBeenCalledTimes(1);
      expect(new Set(findByIds.mock.calls[0]?.[0])).toEqual(new Set(authorIds));
    } finally {
      findByIds.mockRestore();
      authorIds = [];
    }
  });

  it('answers _entities directly on the subgraph, null for unknown keys', async () => {
    const a = await createUser();
    const result = await graphql<{ _entities: Array<{ id: string; username: string } | null> }>(
      users.url,
      'query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id username } } }',
      {
        r: [
          { __typename: 'User', id: a.id },
          { __typename: 'User', id: '01890000-0000-7000-8000-00000000beef' },
        ],
      },
    );
    expect(result.body.data?._entities).toEqual([{ id: a.id, username: a.username }, null]);
  });
});

describe('who may do what (tokens verified by users and the gateway)', () => {
  const UPDATE =
    'mutation($id: ID!) { updateUser(id: $id, input: { firstName: "Changed" }) { id firstName } }';

  it('refuses createUser without a token (UNAUTHENTICATED) and for a plain user (FORBIDDEN)', async () => {
    const anonymous = await graphql(gateway.url, CREATE, { input: newUserInput() });
    expect(anonymous.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const plain = await graphql(
      gateway.url,
      CREATE,
      { input: newUserInput() },
      bearer(await tokens.token(crypto.randomUUID())),
    );
    expect(plain.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('lets the auth service create profiles', async () => {
    const result = await graphql(
      gateway.url,
      CREATE,
      { input: newUserInput() },
      bearer(await tokens.serviceToken('auth')),
    );
    expect(result.body.errors).toBeUndefined();
  });

  it('lists users for admins only', async () => {
    const plain = await graphql(
      gateway.url,
      LIST,
      { first: 1 },
      bearer(await tokens.token(crypto.randomUUID())),
    );
    expect(plain.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await adminGraphql(gateway.url, LIST, { first: 1 })).body.errors).toBeUndefined();
  });

  it('lets people update and delete themselves, not others', async () => {
    const me = await createUser();
    const other = await createUser();
    const myHeaders = bearer(await tokens.token(me.id));
    const own = await graphql(gateway.url, UPDATE, { id: me.id }, myHeaders);
    expect(own.body.data).toEqual({ updateUser: { id: me.id, firstName: 'Changed' } });
    const theirs = await graphql(gateway.url, UPDATE, { id: other.id }, myHeaders);
    expect(theirs.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const deleteOther = await graphql(
      gateway.url,
      'mutation($id: ID!) { deleteUser(id: $id) }',
      { id: other.id },
      myHeaders,
    );
    expect(deleteOther.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const read = await adminGraphql<{ user: { firstName: string } | null }>(
      gateway.url,
      'query($id: ID!) { user(id: $id) { firstName } }',
      { id: other.id },
    );
    expect(read.body.data?.user?.firstName).toBe('Ada');
    const deleteSelf = await graphql(
      gateway.url,
      'mutation($id: ID!) { deleteUser(id: $id) }',
      { id: me.id },
      myHeaders,
    );
    expect(deleteSelf.body.data).toEqual({ deleteUser: true });
  });

  it('rejects a bad token at the subgraph too (no trust in the caller)', async () => {
    const forged = await tokens.sign({
      sub: 'x',
      sid: 's',
      roles: ['admin'],
      iss: 'someone-else',
      aud: 'aiva',
      exp: Math.floor(Date.now() / 1000) + 60,
      iat: Math.floor(Date.now() / 1000),
    });
    const direct = await graphql(users.url, CREATE, { input: newUserInput() }, bearer(forged));
    expect(direct.status).toBe(401);
    expect(direct.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('bad input through the gateway', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['an invalid email', { email: 'not-an-email' }, 'email'],
    ['an empty first name', { firstName: '   ' }, 'firstName'],
    ['an over-long last name', { lastName: 'x'.repeat(101) }, 'lastName'],
    ['a too-short username', { username: 'ab' }, 'username'],
    ['a username with spaces', { username: 'two words' }, 'username'],
  ];
  for (const [what, overrides, field] of cases) {
    it(`rejects ${what} with BAD_USER_INPUT naming ${field}, writing nothing`, async () => {
      const before = await totalCount();
      const result = await adminGraphql(gateway.url, CREATE, { input: newUserInput(overrides) });
      expect(result.body.data).toBeNull();
      expect(result.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
      expect(await totalCount()).toBe(before);
    });
  }

  it('rejects a duplicate email (any case) with CONFLICT on email', async () => {
    const existing = await createUser();
    const before = await totalCount();
    const result = await adminGraphql(gateway.url, CREATE, {
      input: newUserInput({ email: existing.email.toUpperCase() }),
    });
    expect(result.body.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', field: 'email' });
    expect(await totalCount()).toBe(before);
  });

  it('rejects a duplicate username with CONFLICT on username', async () => {
    const existing = await createUser();
    const result = await adminGraphql(gateway.url, CREATE, {
      input: newUserInput({ username: existing.username }),
    });
    expect(result.body.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', field: 'username' });
  });

  it('refuses any email in an update (email belongs to auth), leaving the user unchanged', async () => {
    const a = await createUser();
    const b = await createUser();
    const result = await adminGraphql(
      gateway.url,
      'mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id } }',
      { id: b.id, input: { email: a.email } },
    );
    // Issue #7: `email` is no longer part of UpdateUserInput (was CONFLICT for a taken address, and accepted for
    // a free one: a victim's address could be squatted).
    expect(result.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(result.body.errors?.[0]?.message).toMatch(/"email"/);
    const read = await adminGraphql<{ user: User }>(
      gateway.url,
      'query($id: ID!) { user(id: $id) { email } }',
      {
        id: b.id,
      },
    );
    expect(read.body.data?.user.email).toBe(b.email);
  });

  it('answers NOT_FOUND for updating or deleting an unknown id', async () => {
    const id = '01890000-0000-7000-8000-000000000001';
    const update = await adminGraphql(
      gateway.url,
      'mutation($id: ID!) { updateUser(id: $id, input: { firstName: "X" }) { id } }',
      { id },
    );
    expect(update.body.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'id' });
    const remove = await adminGraphql(gateway.url, 'mutation($id: ID!) { deleteUser(id: $id) }', { id });
    expect(remove.body.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'id' });
  });

  it('rejects a malformed id with BAD_USER_INPUT', async () => {
    const result = await adminGraphql(gateway.url, '{ user(id: "42") { id } }');
    expect(result.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
  });

  for (const first of [0, -1, 101]) {
    it(`rejects first: ${first} with BAD_USER_INPUT on first`, async () => {
      const result = await adminGraphql(gateway.url, LIST, { first });
      expect(result.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
    });
  }

  for (const after of ['garbage', Buffer.from('u:not-a-uuid').toString('base64url'), '!!!']) {
    it(`rejects the cursor ${JSON.stringify(after)} with BAD_USER_INPUT on after`, async () => {
      const result = await adminGraphql(gateway.url, LIST, { first: 2, after });
      expect(result.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    });
  }

  // GraphQL over HTTP: a document error is HTTP 200 under `accept: application/json` (the default of this
  // client), HTTP 400 under `application/graphql-response+json`.
  it('answers malformed GraphQL with BAD_USER_INPUT: HTTP 200 under application/json', async () => {
    const result = await adminGraphql(gateway.url, '{ users(first: 2) { edges ');
    expect(result.status).toBe(200);
    expect(result.body.data).toBeUndefined();
    expect(result.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('answers an unknown field with BAD_USER_INPUT: HTTP 400 under application/graphql-response+json', async () => {
    const result = await graphql(gateway.url, '{ users { nope } }', undefined, {
      ...adminHeaders,
      accept: 'application/graphql-response+json',
    });
    expect(result.status).toBe(400);
    expect(result.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('answers malformed JSON with HTTP 400 and a GraphQL error body', async () => {
    const response = await fetch(gateway.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query": "{ __typename }"',
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { errors: Array<{ extensions: { code: string } }> };
    expect(body.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
  });

  it('answers a body over the limit with HTTP 413', async () => {
    const response = await fetch(gateway.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ __typename } #${'x'.repeat(70 * 1024)}` }),
    });
    expect(response.status).toBe(413);
    const body = (await response.json()) as { errors: Array<{ extensions: { code: string } }> };
    expect(body.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
  });

  it('hides internal failures behind INTERNAL_SERVER_ERROR without details', async () => {
    const count = vi
      .spyOn(users.store, 'count')
      .mockRejectedValueOnce(new Error('disk I/O error at /srv/secret.db'));
    try {
      const result = await adminGraphql(gateway.url, '{ users(first: 1) { totalCount } }');
      expect(result.body.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
      expect(JSON.stringify(result.body)).not.toMatch(/secret|disk I\/O|stack/i);
    } finally {
      count.mockRestore();
    }
  });
});

describe('gateway over HTTP', () => {
  it('serves GET /graphql for queries (with the CSRF-safe header)', async () => {
    const response = await fetch(`${gateway.url}?query=${encodeURIComponent('{ __typename }')}`, {
      headers: { 'apollo-require-preflight': 'true' },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: { __typename: 'Query' } });
  });

  it('serves an anonymous simple GET, refuses one with credentials without the CSRF-safe header', async () => {
    const url = `${gateway.url}?query=${encodeURIComponent('{ __typename }')}`;
    expect((await fetch(url)).status).toBe(200);
    const refused = await fetch(url, { headers: { cookie: 'session=1' } });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ errors: [{ extensions: { reason: 'CSRF_PREVENTED' } }] });
  });

  it('serves automatic persisted queries', async () => {
    const query = '{ user(id: "01890000-0000-7000-8000-000000000000") { id } }';
    const extensions = {
      persistedQuery: { version: 1, sha256Hash: createHash('sha256').update(query).digest('hex') },
    };
    const send = (body: Record<string, unknown>) =>
      fetch(gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(
        (r) =>
          r.json() as Promise<{
            data?: unknown;
            errors?: Array<{ message: string; extensions: Record<string, unknown> }>;
          }>,
      );
    const unknown = await send({ extensions });
    expect(unknown.errors?.[0]).toMatchObject({
      message: 'PersistedQueryNotFound',
      extensions: { code: 'BAD_USER_INPUT', reason: 'PERSISTED_QUERY_NOT_FOUND' },
    });
    const registered = await send({ query, extensions });
    expect(registered.errors).toBeUndefined();
    const byHash = await send({ extensions });
    expect(byHash).toEqual(registered);
  });

  it('sends security headers', async () => {
    const response = await fetch(`${gateway.base}/health`);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('strict-transport-security')).toMatch(/max-age=/);
    expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(response.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
  });

  it('allows configured CORS origins only', async () => {
    const preflight = (origin: string) =>
      fetch(gateway.url, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type',
        },
      });
    const allowed = await preflight('https://app.example.test');
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.test');
    const denied = await preflight('https://evil.example.test');
    expect(denied.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('reports health, readiness per subgraph and Prometheus metrics', async () => {
    expect(await (await fetch(`${gateway.base}/health`)).json()).toEqual({
      status: 'ok',
      service: 'gateway',
    });
    const ready = await fetch(`${gateway.base}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'ready',
      service: 'gateway',
      checks: { users: 'up', posts: 'up', cache: 'up' },
    });
    await adminGraphql(gateway.url, 'query MetricsProbe { __typename }');
    const metrics = await (await fetch(`${gateway.base}/metrics`)).text();
    expect(metrics).toMatch(
      /aiva_graphql_requests_total\{[^}]*operation="MetricsProbe"[^}]*outcome="success"[^}]*\} [1-9]/,
    );
    expect(metrics).toMatch(/aiva_graphql_request_duration_seconds_bucket\{[^}]*operation="MetricsProbe"/);
    expect(metrics).toMatch(/aiva_graphql_errors_total\{[^}]*code="BAD_USER_INPUT"/);
  });

  it('reports the users subgraph ready with its store and bus', async () => {
    const base = users.url.replace(/\/graphql$/, '');
    const ready = await fetch(`${base}/ready`);
    expect(await ready.json()).toEqual({
      status: 'ready',
      service: 'users',
      checks: { store: 'up', events: 'up' },
    });
  });
});
