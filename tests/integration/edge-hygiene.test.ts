import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessStack, startInProcessStack } from '../helpers/in-process-stack.js';
import { graphql } from '../helpers/stack.js';

// The whole system configured for production: neither the gateway nor auth nor users answers introspection or
// spells out the schema in its errors ("Did you mean ...?"), whether the mistake is in the query or in the
// variables.

let stack: InProcessStack;
let urls: Record<'gateway' | 'auth' | 'users', string>;

beforeAll(async () => {
  // The gateway reads NODE_ENV from its configuration, the subgraph servers from the process environment.
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    stack = await startInProcessStack({ env: { NODE_ENV: 'production' } });
  } finally {
    process.env.NODE_ENV = nodeEnv;
  }
  const address = stack.users.server.app.server.address();
  urls = {
    gateway: stack.gatewayUrl,
    auth: `${stack.authUrl}/graphql`,
    users: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/graphql`,
  };
});

afterAll(async () => {
  await stack?.stop();
});

describe('a production system', () => {
  it('refuses introspection at the gateway and at each subgraph', async () => {
    for (const [name, url] of Object.entries(urls)) {
      for (const query of [
        '{ __schema { types { name } } }',
        '{ __type(name: "User") { fields { name } } }',
      ]) {
        // A validation error: HTTP 200 under application/json (this client's), 400 under the spec's own type.
        const result = await graphql(url, query);
        expect(result.status, name).toBe(200);
        expect(result.body.data, name).toBeUndefined();
        expect(result.body.errors?.[0]?.extensions?.code, name).toBe('BAD_USER_INPUT');
      }
      expect((await graphql(url, '{ __typename }')).body, name).toEqual({ data: { __typename: 'Query' } });
    }
  });

  it('names an unknown field without suggesting the real ones', async () => {
    const cases: Array<[keyof typeof urls, string, string]> = [
      ['gateway', '{ me { emial } }', 'Cannot query field "emial" on type "User".'],
      ['users', '{ user(id: "x") { emial } }', 'Cannot query field "emial" on type "User".'],
      ['auth', '{ me { rols } }', 'Cannot query field "rols" on type "User".'],
      ['gateway', '{ usres(first: 1) { totalCount } }', 'Cannot query field "usres" on type "Query".'],
    ];
    for (const [name, query, message] of cases) {
      const result = await graphql(urls[name], query, undefined, {
        accept: 'application/graphql-response+json',
      });
      expect(result.status).toBe(400);
      expect(result.body.errors?.[0]?.message, name).toBe(message);
      expect(JSON.stringify(result.body), name).not.toContain('Did you mean');
    }
  });

  it('hides suggestions in variable errors too (a misspelt sign-up field)', async () => {
    const SIGN_UP = 'mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }';
    const input = {
      emial: 'someone@example.test',
      password: 'correct horse battery',
      username: 'someone',
      firstName: 'Some',
      lastName: 'One',
    };
    for (const url of [urls.gateway, urls.auth]) {
      const result = await graphql(url, SIGN_UP, { input });
      expect(result.body.data ?? undefined).toBeUndefined();
      const messages = result.body.errors?.map((error) => error.message) ?? [];
      expect(result.body.errors?.every((error) => error.extensions?.code === 'BAD_USER_INPUT')).toBe(true);
      expect(messages.some((m) => m.includes('Field "emial" is not defined by type "SignUpInput".'))).toBe(
        true,
      );
      expect(JSON.stringify(result.body)).not.toContain('Did you mean');
    }
  });
});
