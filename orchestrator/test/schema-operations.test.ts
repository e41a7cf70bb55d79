import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GraphQLSchema } from 'graphql';
import { afterEach, describe, expect, it } from 'vitest';
import { runSchemaCheck } from '../src/schema/check.js';
import { apiSchemaOf, composeFromConfig } from '../src/schema/compose.js';
import { graphqlJs } from '../src/schema/graphql-js.js';
import { checkOperations, findOperationFiles, formatOperationProblem } from '../src/schema/operations.js';
import { publishSchema } from '../src/schema/publish.js';
import { loadSupergraphConfig } from '../src/schema/supergraph-config.js';

// Operation checks, like `rover graph check` with operations: every named operation under operations/ and
// each subgraph's operations/ must validate against the newly composed API schema.

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const LINK = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])\n';

const PRODUCTS_SDL = `${LINK}
type Product @key(fields: "id") {
  id: ID!
  name: String!
  price: Int!
}

type Query {
  product(id: ID!): Product
  products(first: Int = 10): [Product!]!
}
`;

const PRODUCT_OPERATIONS = `# Two operations and a fragment in one file.
query Product($id: ID!) {
  product(id: $id) {
    ...ProductFields
  }
}

query ProductPrices {
  products {
    id
    price
  }
}

fragment ProductFields on Product {
  id
  name
  price
}
`;

const tempDirs: string[] = [];

afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A project laid out like the repository: subgraphs/products/{schema.graphql,operations/}, operations/. */
function project(sdl: string = PRODUCTS_SDL): string {
  const dir = mkdtempSync(join(tmpdir(), 'aiva-schema-operations-'));
  tempDirs.push(dir);
  mkdirSync(join(dir, 'subgraphs/products/operations'), { recursive: true });
  mkdirSync(join(dir, 'operations/nested'), { recursive: true });
  writeFileSync(
    join(dir, 'supergraph.yaml'),
    'subgraphs:\n  products:\n    routing_url: http://p/graphql\n    schema:\n      file: ./subgraphs/products/schema.graphql\n',
  );
  setSdl(dir, sdl);
  writeFileSync(join(dir, 'subgraphs/products/operations/products.graphql'), PRODUCT_OPERATIONS);
  writeFileSync(
    join(dir, 'operations/nested/product-name.graphql'),
    'query ProductName($id: ID!) { product(id: $id) { name } }\n',
  );
  writeFileSync(join(dir, 'operations/README.md'), 'not an operation file\n');
  return dir;
}

function setSdl(dir: string, sdl: string): void {
  writeFileSync(join(dir, 'subgraphs/products/schema.graphql'), sdl);
  const outcome = composeFromConfig(loadSupergraphConfig(join(dir, 'supergraph.yaml')));
  if (!outcome.ok) throw new Error(outcome.errors.join('\n'));
  writeFileSync(join(dir, 'supergraph.graphql'), outcome.supergraphSdl);
}

function approve(dir: string, id: string): void {
  mkdirSync(join(dir, '.ci'), { recursive: true });
  writeFileSync(
    join(dir, '.ci/schema-approvals.yaml'),
    `approved:\n  - change: "${id}"\n    reason: "test"\n`,
  );
}

function apiOf(dir: string): GraphQLSchema {
  return apiSchemaOf(readFileSync(join(dir, 'supergraph.graphql'), 'utf8'));
}

function check(dir: string) {
  const config = loadSupergraphConfig(join(dir, 'supergraph.yaml'));
  return checkOperations(dir, findOperationFiles(dir, config), apiOf(dir));
}

describe('operation checks', () => {
  it('finds operation files under operations/ and each subgraph, and validates every named operation', () => {
    const dir = project();
    const outcome = check(dir);
    expect(outcome.files).toEqual([
      'operations/nested/product-name.graphql',
      'subgraphs/products/operations/products.graphql',
    ]);
    expect(outcome.operations.map((o) => [o.file, o.name, o.kind])).toEqual([
      ['operations/nested/product-name.graphql', 'ProductName', 'query'],
      ['subgraphs/products/operations/products.graphql', 'Product', 'query'],
      ['subgraphs/products/operations/products.graphql', 'ProductPrices', 'query'],
    ]);
    expect(outcome.problems).toEqual([]);
  });

  it('fails schema:check when a change breaks an operation, naming the file, operation and location', async () => {
    const dir = project();
    expect((await publishSchema({ root: dir })).ok).toBe(true);
    setSdl(dir, PRODUCTS_SDL.replace('  price: Int!\n', ''));
    approve(dir, 'FIELD_REMOVED:Product.price'); // approved for the API: the operations still catch it

    const result = await runSchemaCheck({ root: dir, rover: null });
    expect(result.ok).toBe(false);
    expect(result.failures).toEqual([
      [
        '2 problem(s) in 3 operation(s) in 2 file(s) against the new API schema:',
        '  - subgraphs/products/operations/products.graphql:11:5 operation ProductPrices: Cannot query field "price" on type "Product".',
        '  - subgraphs/products/operations/products.graphql:18:3 fragment ProductFields: Cannot query field "price" on type "Product".',
      ].join('\n'),
    ]);
    expect(result.operations?.problems.map((p) => p.definition)).toEqual([
      'operation ProductPrices',
      'fragment ProductFields',
    ]);

    // schema:publish refuses too: a published schema never breaks the repository's own operations.
    const publish = await publishSchema({ root: dir });
    expect(publish.ok).toBe(false);
    expect(publish.wrote).toBe(false);
  });

  it('reports argument and variable errors at their location', () => {
    const dir = project();
    writeFileSync(
      join(dir, 'operations/bad-arguments.graphql'),
      'query Listing($first: String) {\n  products(first: $first) { id }\n  product { id }\n}\n',
    );
    const problems = check(dir).problems.map(formatOperationProblem);
    expect(problems).toEqual([
      'operations/bad-arguments.graphql:3:3 operation Listing: Field "product" argument "id" of type "ID!" is required, but it was not provided.',
      'operations/bad-arguments.graphql:1:15 operation Listing: Variable "$first" of type "String" used in position expecting type "Int".',
    ]);
  });

  it('rejects anonymous, duplicate, unparsable and empty operation files', () => {
    const dir = project();
    writeFileSync(join(dir, 'operations/anonymous.graphql'), '{ product(id: "1") { id } }\n');
    writeFileSync(join(dir, 'operations/duplicate.graphql'), 'query ProductPrices { products { id } }\n');
    writeFileSync(join(dir, 'operations/syntax.graphql'), 'query Broken {\n  product(id: "1") {\n');
    writeFileSync(join(dir, 'operations/fragments-only.graphql'), 'fragment F on Product { id }\n');
    const problems = check(dir).problems.map(formatOperationProblem);
    expect(problems).toEqual([
      'operations/anonymous.graphql:1:1: every operation must be named',
      'operations/fragments-only.graphql: has no operation',
      'operations/syntax.graphql:3:1: Syntax Error: Expected Name, found <EOF>.',
      'subgraphs/products/operations/products.graphql:8:1 operation ProductPrices: operation names must be unique across operation files; ProductPrices is also in operations/duplicate.graphql',
    ]);
  });
});

describe("the repository's operations", () => {
  const config = loadSupergraphConfig(join(REPO_ROOT, 'supergraph.yaml'));
  const files = findOperationFiles(REPO_ROOT, config);
  const api = apiSchemaOf(readFileSync(join(REPO_ROOT, 'supergraph.graphql'), 'utf8'));

  it('cover users, auth, ai, media and notifications, and all validate against the committed supergraph', () => {
    const outcome = checkOperations(REPO_ROOT, files, api);
    expect(outcome.problems.map(formatOperationProblem)).toEqual([]);
    const names = outcome.operations.map((o) => o.name);
    expect(names).toEqual(expect.arrayContaining(['User', 'Users', 'UpdateUser', 'DeleteUser']));
    expect(names).toEqual(
      expect.arrayContaining([
        'SignUp',
        'SignIn',
        'RefreshSession',
        'SignOut',
        'Me',
        'RequestPasswordReset',
        'ResetPassword',
        'VerifyEmail',
      ]),
    );
    expect(names).toEqual(
      expect.arrayContaining(['MyNotifications', 'MarkNotificationRead', 'UpdateNotificationPreferences']),
    );
    expect(names).toEqual(expect.arrayContaining(['CreateUpload', 'Media', 'MyMedia', 'DeleteMedia']));
    expect(names).toEqual(
      expect.arrayContaining(['SendMessage', 'Conversation', 'IndexDocument', 'SemanticSearch']),
    );
    expect(
      outcome.files.every((f) =>
        /^subgraphs\/(users|auth|ai|media|notifications)\/operations\/[a-z-]+\.graphql$/.test(f),
      ),
    ).toBe(true);
  });

  it('select the private User.email only for the person themself (Me)', () => {
    const { parse, TypeInfo, visit, visitWithTypeInfo, getNamedType } = graphqlJs;
    const selectingEmail = new Set<string>();
    for (const file of files) {
      const document = parse(readFileSync(file, 'utf8'));
      for (const definition of document.definitions) {
        if (definition.kind !== 'OperationDefinition') continue;
        const typeInfo = new TypeInfo(api);
        visit(
          definition,
          visitWithTypeInfo(typeInfo, {
            Field(node) {
              const parent = typeInfo.getParentType();
              if (parent && getNamedType(parent).name === 'User' && node.name.value === 'email') {
                selectingEmail.add(definition.name?.value ?? '(anonymous)');
              }
            },
          }),
        );
      }
    }
    expect([...selectingEmail]).toEqual(['Me']);
  });
});
