import { readSupergraph } from '@aiva/shared';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import {
  apiSchemaOf,
  BUILT_IN_TOOL_NAMES,
  graphqlJs,
  indexSchema,
  introspectType,
  operationTools,
  renderSearchAnswer,
  searchSchema,
  tokenize,
  validateOperation,
} from '../src/mcp/schema/index.js';
import { loadOperations, type StoredOperation } from '../src/operations.js';

/** The graphql-js copy federation's schemas belong to (vitest would otherwise load a second one). */
const { buildSchema, parse } = graphqlJs;

// The transport-free core of the MCP server over the committed supergraph and the repository's stored
// operations: schema search and introspection answer compact SDL, validation answers errors with locations, and
// every operation tool's JSON Schemas compile under Ajv's strict mode and accept / refuse what GraphQL would.

const supergraphSdl = readSupergraph();
const schema = apiSchemaOf(supergraphSdl);
const index = indexSchema(schema);
const stored = loadOperations();

describe('indexSchema', () => {
  it('indexes types, Query and Mutation fields and arguments, with descriptions', () => {
    const names = index.entries.map((e) => `${e.kind}:${e.typeName}.${e.name}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'type:User.User',
        'field:Query.me',
        'field:Mutation.requestPasswordReset',
        'argument:Mutation.email',
        'inputField:SignUpInput.password',
        'enumValue:NotificationChannel.PUSH',
      ]),
    );
    const reset = index.entries.find((e) => e.kind === 'field' && e.name === 'requestPasswordReset');
    expect(reset?.nameTokens).toEqual(['request', 'password', 'reset']);
    expect(reset?.description).toMatch(/Always true/);
  });

  it('leaves out introspection types and Federation internals', () => {
    // The raw supergraph (join__/link__ machinery included) and a subgraph-style schema with entity plumbing.
    const raw = indexSchema(buildSchema(supergraphSdl, { assumeValidSDL: true }));
    const subgraph = indexSchema(
      buildSchema(`
        scalar _Any
        union _Entity = Thing
        type _Service { sdl: String }
        type Thing { id: ID! }
        type Query { thing: Thing _service: _Service! _entities(representations: [_Any!]!): [_Entity]! }
      `),
    );
    for (const { entries } of [raw, subgraph, index]) {
      const leaked = entries.filter(
        (e) =>
          /^(__|join__|link__|_Any$|_Entity$|_Service$)/.test(e.typeName) ||
          ['_service', '_entities'].includes(e.fieldName ?? ''),
      );
      expect(leaked).toEqual([]);
    }
    expect(subgraph.entries.map((e) => `${e.typeName}.${e.name}`)).toEqual([
      'Query.thing',
      'Thing.Thing',
      'Thing.id',
    ]);
    expect(raw.entries.some((e) => e.name === 'requestPasswordReset')).toBe(true);
  });

  it('splits camelCase, PascalCase and snake_case names into words', () => {
    expect(tokenize('requestPasswordReset')).toEqual(['request', 'password', 'reset']);
    expect(tokenize('HTTPServerURL_v2')).toEqual(['http', 'server', 'url', 'v2']);
    expect(tokenize('IN_APP')).toEqual(['in', 'app']);
  });
});

describe('searchSchema', () => {
  it('finds a mutation by the words of its name: "reset password"', () => {
    const hits = searchSchema(index, 'reset password', { limit: 5 });
    const found = hits.map((h) => `${h.type}.${h.fields.join(',')}`);
    expect(found.slice(0, 2)).toEqual(['Mutation.resetPassword', 'Mutation.requestPasswordReset']);
  });

  it('finds a mutation by a word only its description holds', () => {
    // "bootstrap" is in verifyEmail's description alone ("an address listed for admin bootstrap becomes admin").
    const [first] = searchSchema(index, 'admin bootstrap');
    expect(first).toMatchObject({ type: 'Mutation', fields: ['verifyEmail'], path: 'Mutation.verifyEmail' });
    // Only that field, its arguments and type, and its description's first sentence.
    expect(first?.sdl).toMatch(
      /^type Mutation \{\n {2}"Marks the email verified[^"\n]*"\n {2}verifyEmail\(token: String!\): Boolean!\n\}$/,
    );
    const [durable] = searchSchema(index, 'durable');
    expect(durable?.fields).toEqual(['sendNotification']);
  });

  it('ranks each root field by its own match, not grouped under Mutation', () => {
    const hits = searchSchema(index, 'notifications read', { limit: 3 });
    const top = hits.slice(0, 2).map((h) => `${h.type}.${h.fields.join(',')}`);
    expect(top.sort()).toEqual(['Mutation.markAllNotificationsRead', 'Mutation.markNotificationRead']);
  });

  it('answers the type with only the matching fields, and the path from a root field', () => {
    const [hit] = searchSchema(index, 'unreadOnly');
    expect(hit).toMatchObject({
      type: 'User',
      fields: ['notifications'],
      path: 'Query.me → User.notifications',
    });
    expect(hit?.sdl).toContain('notifications(first: Int = 20, after: String, unreadOnly: Boolean = false)');
    expect(hit?.sdl).not.toContain('username');
    // Each snippet is valid SDL, and an answer is a small part of the whole schema.
    for (const h of searchSchema(index, 'session', { limit: 10 })) expect(() => parse(h.sdl)).not.toThrow();
    const answer = renderSearchAnswer(searchSchema(index, 'unread notifications', { limit: 3 }));
    expect(answer).toMatch(/^# path: Query\.me\n/);
    expect(answer.length).toBeLessThan(supergraphSdl.length / 5);
  });

  it('reaches input types through the argument that takes them', () => {
    const [hit] = searchSchema(index, 'SignUpInput');
    expect(hit).toMatchObject({ type: 'SignUpInput', fields: [], path: 'Mutation.signUp(input)' });
    expect(hit?.sdl).toMatch(/^input SignUpInput \{/);
  });

  it('answers a type by name first, whole, and respects the limit', () => {
    const hits = searchSchema(index, 'User', { limit: 3 });
    expect(hits).toHaveLength(3);
    expect(hits[0]).toMatchObject({ type: 'User', fields: [], path: 'Query.me' });
    expect(hits[0]?.sdl).toContain('unreadNotificationCount: Int!');
    expect(searchSchema(index, 'zzqx')).toEqual([]);
    expect(searchSchema(index, '  ')).toEqual([]);
  });
});

describe('introspectType', () => {
  it('answers the type alone at depth 0, the types its fields name at depth 1, theirs at depth 2', () => {
    expect(introspectType(schema, 'User', 0)).toMatchObject({ found: true, types: ['User'] });
    const one = introspectType(schema, 'User');
    if (!one.found) throw new Error(one.message);
    expect(one.types[0]).toBe('User');
    expect(one.types).toEqual(expect.arrayContaining(['Session', 'NotificationConnection']));
    expect(one.types).not.toContain('PageInfo'); // two steps away
    const two = introspectType(schema, 'User', 2);
    if (!two.found) throw new Error(two.message);
    expect(two.types.slice(0, one.types.length)).toEqual(one.types);
    expect(two.types).toEqual(expect.arrayContaining(['NotificationEdge', 'PageInfo']));
    expect(new Set(two.types).size).toBe(two.types.length);
    expect(two.sdl).toContain('type NotificationConnection {\n  edges: [NotificationEdge!]!');
    expect(two.sdl).toContain('type PageInfo {\n  hasNextPage: Boolean!\n  endCursor: String\n}');
    expect(two.sdl).not.toMatch(/scalar (String|Boolean|Int|ID)\b/);
    // Descriptions cut to their first sentence.
    expect(two.sdl).toContain('"The person\'s notifications, newest first."\n  notifications(');
    expect(two.sdl).not.toContain('FORBIDDEN.');
    expect(() => parse(two.sdl)).not.toThrow();
  });

  it('lists enums, inputs and scalars once however many fields name them', () => {
    const deep = introspectType(schema, 'Mutation', 2);
    if (!deep.found) throw new Error(deep.message);
    for (const name of [
      'NotificationCategory',
      'SendNotificationInput',
      'JSON',
      'PushSubscriptionKeysInput',
    ]) {
      expect(deep.types.filter((t) => t === name)).toEqual([name]);
      expect(deep.sdl.match(new RegExp(`(enum|input|scalar|type) ${name}\\b`, 'g'))).toHaveLength(1);
    }
  });

  it('answers an unknown type with the closest names, and never shows internals', () => {
    expect(introspectType(schema, 'Notificaton')).toMatchObject({
      found: false,
      suggestions: expect.arrayContaining(['Notification']),
    });
    const missing = introspectType(schema, 'Sesion');
    expect(missing).toMatchObject({ found: false, message: expect.stringMatching(/Did you mean Session/) });
    expect(introspectType(schema, '__Schema').found).toBe(false);
    expect(introspectType(schema, 'pageinfo')).toMatchObject({ found: true, name: 'PageInfo' });
  });
});

describe('validateOperation', () => {
  it('names the operations of a valid document', () => {
    expect(validateOperation(schema, 'query Me { me { id } }\nmutation Out { signOutEverywhere }')).toEqual({
      valid: true,
      operations: [
        { name: 'Me', kind: 'query' },
        { name: 'Out', kind: 'mutation' },
      ],
    });
    expect(validateOperation(schema, '{ vapidPublicKey }')).toEqual({
      valid: true,
      operations: [{ name: null, kind: 'query' }],
    });
  });

  it('answers validation errors with their locations', () => {
    const outcome = validateOperation(
      schema,
      'query Bad {\n  me {\n    id\n    shoeSize\n  }\n  user { id }\n}',
    );
    expect(outcome.valid).toBe(false);
    if (outcome.valid) return;
    expect(outcome.errors).toEqual(
      expect.arrayContaining([
        { message: 'Cannot query field "shoeSize" on type "User".', locations: [{ line: 4, column: 5 }] },
        {
          message: expect.stringContaining('argument "id" of type "ID!" is required'),
          locations: [{ line: 6, column: 3 }],
        },
      ]),
    );
  });

  it('answers syntax errors and nonsense without throwing', () => {
    expect(validateOperation(schema, 'query { me { id ')).toEqual({
      valid: false,
      errors: [
        { message: 'Syntax Error: Expected Name, found <EOF>.', locations: [{ line: 1, column: 17 }] },
      ],
    });
    for (const nonsense of ['', 'fragment F on User { id }', '{'.repeat(5000)]) {
      expect(validateOperation(schema, nonsense).valid).toBe(false);
    }
  });
});

describe('operationTools over the stored operations', () => {
  const { tools, problems } = operationTools(schema, stored.operations);
  const ajv = new Ajv({ strict: true, allErrors: true });
  const tool = (name: string) => {
    const found = tools.find((t) => t.name === name);
    if (!found) throw new Error(`no tool ${name}`);
    return found;
  };

  it('makes one tool per stored operation, named uniquely and as MCP clients accept', () => {
    expect(stored.problems).toEqual([]);
    expect(problems).toEqual([]);
    expect(tools).toHaveLength(stored.operations.length);
    expect(new Set(tools.map((t) => t.name)).size).toBe(tools.length);
    for (const t of tools) {
      expect(t.name).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
      expect(BUILT_IN_TOOL_NAMES).not.toContain(t.name);
      expect(t.description.length).toBeGreaterThan(0);
    }
    expect(tool('request-password-reset')).toMatchObject({
      title: 'Request password reset',
      description: 'Mails a password reset link to the address if it has an account; always true.',
      kind: 'mutation',
      operationName: 'RequestPasswordReset',
      owner: 'auth',
      annotations: { readOnlyHint: false, destructiveHint: true },
    });
    expect(tool('request-password-reset').document).toContain('mutation RequestPasswordReset(');
    expect(tool('my-notifications').annotations).toEqual({
      readOnlyHint: true,
      destructiveHint: false,
      idempotentHint: true,
    });
  });

  it('gives every tool input and output schemas that compile under Ajv strict mode, plain JSON Schema', () => {
    for (const t of tools) {
      expect(() => ajv.compile(t.inputSchema), `${t.name} inputSchema`).not.toThrow();
      expect(() => ajv.compile(t.outputSchema), `${t.name} outputSchema`).not.toThrow();
      expect(t.inputSchema).toMatchObject({ type: 'object', additionalProperties: false });
      expect(t.outputSchema).toMatchObject({ type: 'object', additionalProperties: false });
      const text = JSON.stringify([t.inputSchema, t.outputSchema]);
      expect(text).not.toMatch(/"\$schema"|"format"|"\$ref"/);
    }
  });

  it('accepts the inputs GraphQL would, and refuses the others', () => {
    const accepts = (name: string, input: unknown) => ajv.validate(tool(name).inputSchema, input);
    const signUp = { email: 'a@b.c', password: 'secret-123', username: 'a', firstName: 'A', lastName: 'B' };
    expect(accepts('sign-up', { input: signUp })).toBe(true);
    expect(accepts('sign-up', {})).toBe(false); // input is required
    expect(accepts('sign-up', { input: { ...signUp, password: undefined } })).toBe(false);
    expect(accepts('sign-up', { input: { ...signUp, admin: true } })).toBe(false); // no unknown fields
    expect(accepts('sign-up', { input: { ...signUp, email: 42 } })).toBe(false);

    expect(tool('my-notifications').inputSchema).toMatchObject({
      properties: { first: { default: 20 }, unreadOnly: { default: false } },
    });
    expect(tool('my-notifications').inputSchema.required).toBeUndefined();
    expect(accepts('my-notifications', {})).toBe(true);
    expect(accepts('my-notifications', { first: 5, after: null, unreadOnly: true })).toBe(true);
    expect(accepts('my-notifications', { first: 1.5 })).toBe(false);
    expect(accepts('my-notifications', { first: 2 ** 31 })).toBe(false);
    expect(accepts('my-notifications', { limit: 5 })).toBe(false);

    const preference = { category: 'PRODUCT', channel: 'EMAIL', enabled: true };
    expect(accepts('update-notification-preferences', { input: [preference] })).toBe(true);
    expect(accepts('update-notification-preferences', { input: preference })).toBe(false); // a list
    expect(accepts('update-notification-preferences', { input: [{ ...preference, channel: 'FAX' }] })).toBe(
      false,
    );

    // JSON is any value; the enum lists its values.
    const send = { userId: 'u1', category: 'ACTIVITY', title: 'Hi', body: 'There', data: { link: '/x' } };
    expect(accepts('send-notification', { input: send })).toBe(true);
    expect(accepts('send-notification', { input: { ...send, category: 'NOPE' } })).toBe(false);
    expect(accepts('set-sms-number', { number: null })).toBe(true);
    expect(accepts('set-sms-number', {})).toBe(true);
  });

  it('describes the data an operation answers, nullable where the schema says', () => {
    const output = tool('my-notifications').outputSchema;
    const data = {
      me: {
        id: 'u1',
        unreadNotificationCount: 1,
        notifications: {
          edges: [
            {
              cursor: 'c1',
              node: {
                id: 'n1',
                category: 'ACTIVITY',
                title: 'T',
                body: 'B',
                data: { any: ['json'] },
                readAt: null,
                createdAt: '2026-01-01T00:00:00Z',
              },
            },
          ],
          pageInfo: { hasNextPage: false, endCursor: null },
        },
      },
    };
    expect(ajv.validate(output, data)).toBe(true);
    expect(ajv.validate(output, { me: null })).toBe(true); // null without an access token
    expect(ajv.validate(output, {})).toBe(false);
    expect(ajv.validate(output, { me: { ...data.me, notifications: null } })).toBe(false); // non-null field
    expect(ajv.validate(output, { me: { ...data.me, email: 'x' } })).toBe(false); // not selected
    expect(ajv.validate(tool('request-password-reset').outputSchema, { requestPasswordReset: true })).toBe(
      true,
    );
    expect(ajv.validate(tool('request-password-reset').outputSchema, { requestPasswordReset: 'yes' })).toBe(
      false,
    );
  });
});

describe('operationTools on a schema with recursion, custom scalars and abstract types', () => {
  const schemaWithEdges = buildSchema(`
    "An ISO-8601 instant. Sent as text."
    scalar DateTime
    scalar JSON
    enum Order { NEWEST OLDEST }
    input Filter { name: String, after: DateTime, and: [Filter!], not: Filter, order: Order = NEWEST, limit: Int! = 10 }
    interface Node { id: ID! }
    type Doc implements Node { id: ID! title: String! meta: JSON }
    type Tag implements Node { id: ID! label: String }
    union Found = Doc | Tag
    type Query { search(filter: Filter!, take: Float): [Found!]! node(id: ID!): Node }
    type Mutation { validate(ok: Boolean): Boolean }
  `);
  const operation = (
    name: string,
    document: string,
    kind: StoredOperation['kind'] = 'query',
    owner = 'test',
  ) => ({
    name,
    kind,
    document,
    description: '',
    file: `${owner}/${name}.graphql`,
    owner,
  });
  const { tools, problems } = operationTools(schemaWithEdges, [
    operation(
      'Search',
      `query Search($filter: Filter!, $take: Float = 1.5) {
        search(filter: $filter, take: $take) { __typename ... on Doc { id title meta } ... on Tag { id label } }
        node(id: "1") { id ... on Doc { title } }
      }`,
    ),
    operation('Search', 'query Search { node(id: "2") { id } }', 'query', 'other'),
    operation('Validate', 'mutation Validate($ok: Boolean) { validate(ok: $ok) }', 'mutation'),
    operation('Broken', 'query Broken { nothing }'),
  ]);
  const ajv = new Ajv({ strict: true });

  it('expands recursive input objects without looping, maps custom scalars, keeps defaults', () => {
    const [search] = tools;
    expect(() => ajv.compile(search!.inputSchema)).not.toThrow();
    const filter = search!.inputSchema.properties?.filter;
    expect(filter?.properties?.after).toEqual({
      type: ['string', 'null'],
      description: 'A DateTime: An ISO-8601 instant.',
    });
    expect(filter?.properties?.order).toMatchObject({ enum: ['NEWEST', 'OLDEST', null], default: 'NEWEST' });
    expect(filter?.properties?.limit).toMatchObject({ type: 'integer', default: 10 });
    expect(filter?.required).toBeUndefined(); // limit has a default
    expect(search!.inputSchema.properties?.take).toEqual({ type: ['number', 'null'], default: 1.5 });
    const nested = { filter: { and: [{ name: 'a', not: { name: 'b', and: [] } }], after: '2026-01-01' } };
    expect(ajv.validate(search!.inputSchema, nested)).toBe(true);
    expect(ajv.validate(search!.inputSchema, { filter: { nmae: 'typo' } })).toBe(false);
    expect(ajv.validate(search!.inputSchema, { filter: { and: 'no list' } })).toBe(false);
    // A Filter inside a Filter is cut to "an object": the schema stays finite.
    expect(filter?.properties?.not).toEqual({
      type: ['object', 'null'],
      description: 'A Filter (the same shape as the enclosing Filter).',
    });
  });

  it('answers abstract selections: fields of one member may be absent', () => {
    const [search] = tools;
    const output = search!.outputSchema;
    expect(() => ajv.compile(output)).not.toThrow();
    const data = {
      search: [
        { __typename: 'Doc', id: '1', title: 'T', meta: [1, 2] },
        { __typename: 'Tag', id: '2', label: null },
      ],
      node: { id: '1' },
    };
    expect(ajv.validate(output, data)).toBe(true);
    expect(ajv.validate(output, { ...data, search: [{ __typename: 'Nope', id: '3' }] })).toBe(false);
  });

  it('keeps names unique, away from the built-in tools, and reports operations the schema refuses', () => {
    expect(tools.map((t) => t.name)).toEqual(['search', 'search-other', 'validate-test']);
    expect(tools[2]?.description).toBe('The mutation Validate of the supergraph.');
    expect(problems).toEqual([expect.stringMatching(/^test\/Broken\.graphql: Cannot query field "nothing"/)]);
  });
});
