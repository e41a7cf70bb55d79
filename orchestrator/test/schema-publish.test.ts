import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { loadApprovals, pruneApprovals } from '../src/schema/breaking.js';
import { runSchemaCheck } from '../src/schema/check.js';
import { composeFromConfig } from '../src/schema/compose.js';
import { publishSchema } from '../src/schema/publish.js';
import {
  PUBLISHED_SCHEMA_FILE,
  PublishedSchemaError,
  parsePublishedSchema,
  printApiSchema,
  renderPublishedSchema,
} from '../src/schema/published.js';
import { loadSupergraphConfig } from '../src/schema/supergraph-config.js';

// The published schema is the baseline of the breaking-change check. These tests build scratch git
// repositories on `main` and check them as CI does on a push to main: HEAD is its own merge base with main, so
// only the published schema can tell that a break happened some commits back.

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
}
`;

const WITHOUT_PRICE = PRODUCTS_SDL.replace('  price: Int!\n', '');
const WITH_SKU = PRODUCTS_SDL.replace('  price: Int!\n', '  price: Int!\n  sku: String\n');
const WITHOUT_PRICE_WITH_SKU = WITHOUT_PRICE.replace('  name: String!\n', '  name: String!\n  sku: String\n');
const WITHOUT_NAME = WITHOUT_PRICE.replace('  name: String!\n', '');

const PRICE_REMOVED = 'FIELD_REMOVED:Product.price';

const APPROVALS_HEADER = `# Approved breaking changes (scratch copy).
#
# approved:
#   - change: "FIELD_REMOVED:User.email"
#     reason: "example"
`;

// ---------------------------------------------------------------------------------------------------------
// Scratch repositories

const tempDirs: string[] = [];

afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function makeTempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'aiva-schema-publish-'));
  tempDirs.push(dir);
  return dir;
}

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A git repository on `main` with one products subgraph, composed, published and committed. */
async function publishedRepo(): Promise<string> {
  const dir = makeTempDir();
  git(dir, 'init', '--quiet', '--initial-branch=main');
  git(dir, 'config', 'user.email', 'schema-test@example.com');
  git(dir, 'config', 'user.name', 'Schema Test');
  git(dir, 'config', 'commit.gpgsign', 'false');
  mkdirSync(join(dir, 'subgraphs'), { recursive: true });
  writeFileSync(
    join(dir, 'supergraph.yaml'),
    'subgraphs:\n  products:\n    routing_url: http://127.0.0.1:4010/graphql\n    schema:\n      file: ./subgraphs/products.graphql\n',
  );
  setSdl(dir, PRODUCTS_SDL);
  writeApprovals(dir, []);
  await publishOk(dir);
  commitAll(dir, 'products subgraph, published');
  return dir;
}

/** Changes the subgraph and recomposes supergraph.graphql, as a developer would before committing. */
function setSdl(dir: string, sdl: string): void {
  writeFileSync(join(dir, 'subgraphs/products.graphql'), sdl);
  const outcome = composeFromConfig(loadSupergraphConfig(join(dir, 'supergraph.yaml')));
  if (!outcome.ok) throw new Error(outcome.errors.join('\n'));
  writeFileSync(join(dir, 'supergraph.graphql'), outcome.supergraphSdl);
}

function writeApprovals(dir: string, ids: string[]): void {
  mkdirSync(join(dir, '.ci'), { recursive: true });
  const entries = ids.map((id) => `  - change: "${id}"\n    reason: "agreed with every client of ${id}"\n`);
  writeFileSync(
    join(dir, '.ci/schema-approvals.yaml'),
    `${APPROVALS_HEADER}${ids.length === 0 ? 'approved: []\n' : `approved:\n${entries.join('')}`}`,
  );
}

function commitAll(dir: string, message: string): string {
  git(dir, 'add', '-A');
  git(dir, 'commit', '--quiet', '-m', message);
  return git(dir, 'rev-parse', 'HEAD').trim();
}

/** Unrelated commits, as a push to main usually has some. */
function unrelatedCommits(dir: string, count: number): void {
  for (let i = 1; i <= count; i++) {
    writeFileSync(join(dir, `notes-${i}.md`), `note ${i}\n`);
    commitAll(dir, `unrelated change ${i}`);
  }
}

async function publishOk(dir: string) {
  const result = await publishSchema({ root: dir });
  if (!result.ok) throw new Error(result.messages.join('\n'));
  return result;
}

function publishedText(dir: string): string {
  return readFileSync(join(dir, PUBLISHED_SCHEMA_FILE), 'utf8');
}

/** A hand-made baseline: the current API with a header that approves nothing, as `cp` plus an edit would be. */
function handEditBaseline(dir: string): void {
  const api = printApiSchema(readFileSync(join(dir, 'supergraph.graphql'), 'utf8'));
  writeFileSync(join(dir, PUBLISHED_SCHEMA_FILE), renderPublishedSchema(api, []));
}

const check = (dir: string, base?: string) => runSchemaCheck({ root: dir, rover: null, base });

// ---------------------------------------------------------------------------------------------------------

describe('published schema file', () => {
  it('round-trips the API schema and the approvals of the publish', () => {
    const supergraph = composeFromConfigSdl(PRODUCTS_SDL);
    const api = printApiSchema(supergraph);
    expect(api).toContain('type Product {');
    expect(api).not.toContain('join__');
    const approved = [{ change: PRICE_REMOVED, reason: 'moved to "pricing", see #12' }];
    const text = renderPublishedSchema(api, approved);
    expect(text).toContain(
      '# approved: {"change":"FIELD_REMOVED:Product.price","reason":"moved to \\"pricing\\", see #12"}',
    );
    const parsed = parsePublishedSchema(text, 'in a test');
    expect(parsed.sdl).toBe(api);
    expect(parsed.approved).toEqual(approved);
    expect(parsed.schema.getType('Product')).toBeDefined();
    expect(parsePublishedSchema(renderPublishedSchema(api, []), 'x').approved).toEqual([]);
  });

  it('rejects a malformed approval line or schema', () => {
    const api = printApiSchema(composeFromConfigSdl(PRODUCTS_SDL));
    expect(() => parsePublishedSchema(`# approved: {"change":"X"}\n\n${api}`, 'at abc')).toThrow(
      PublishedSchemaError,
    );
    expect(() => parsePublishedSchema(`# approved: {"change":"X"}\n\n${api}`, 'at abc')).toThrow(
      /published-schema\.graphql at abc is not a valid published schema: line 1 must be # approved:/,
    );
    expect(() => parsePublishedSchema('# only a header\n', 'x')).toThrow(/it has no schema/);
    expect(() => parsePublishedSchema('type Query { a: Nope }', 'x')).toThrow(/Unknown type "Nope"/);
  });

  it('pruneApprovals removes entries and keeps the comments', () => {
    const dir = makeTempDir();
    writeApprovals(dir, [PRICE_REMOVED, 'FIELD_REMOVED:Product.name']);
    const file = join(dir, '.ci/schema-approvals.yaml');
    expect(pruneApprovals(file, new Set([PRICE_REMOVED, 'NOT_THERE']))).toEqual([PRICE_REMOVED]);
    expect(loadApprovals(file).map((a) => a.change)).toEqual(['FIELD_REMOVED:Product.name']);
    expect(pruneApprovals(file, new Set(['FIELD_REMOVED:Product.name']))).toEqual([
      'FIELD_REMOVED:Product.name',
    ]);
    const text = readFileSync(file, 'utf8');
    expect(text.startsWith(APPROVALS_HEADER)).toBe(true);
    expect(text).toContain('approved: []');
    expect(loadApprovals(file)).toEqual([]);
  });
});

describe('schema:check against the published schema', () => {
  it('fails on main for a break several commits back in the same push', async () => {
    const dir = await publishedRepo();
    setSdl(dir, WITHOUT_PRICE);
    commitAll(dir, 'drop Product.price');
    unrelatedCommits(dir, 3);

    // On main, HEAD is its own merge base: the old merge-base comparison had nothing to compare.
    expect(git(dir, 'merge-base', 'HEAD', 'main').trim()).toBe(git(dir, 'rev-parse', 'HEAD').trim());
    const result = await check(dir);
    expect(result.ok).toBe(false);
    expect(result.changes?.map((c) => [c.id, c.criticality])).toEqual([[PRICE_REMOVED, 'BREAKING']]);
    expect(result.failures).toEqual([
      expect.stringContaining(
        '1 unapproved breaking change(s) against the published schema (.ci/published-schema.graphql)',
      ),
    ]);
    expect(result.failures[0]).toContain(`- change: "${PRICE_REMOVED}"`);

    // A base ref adds its own comparison; it does not replace the published schema.
    const againstParent = await check(dir, 'HEAD~1');
    expect(againstParent.baseChanges).toEqual([]);
    expect(againstParent.ok).toBe(false);
  });

  it('passes an approved break, and says which approvals match nothing', async () => {
    const dir = await publishedRepo();
    setSdl(dir, WITHOUT_PRICE);
    writeApprovals(dir, [PRICE_REMOVED, 'FIELD_REMOVED:Product.colour']);
    commitAll(dir, 'drop Product.price, approved');
    unrelatedCommits(dir, 2);

    const result = await check(dir);
    expect(result.failures).toEqual([]);
    expect(result.ok).toBe(true);
    const output = result.messages.join('\n');
    expect(output).toContain(`✔ ${PRICE_REMOVED}: Field 'price' was removed from object type 'Product'`);
    expect(output).toContain(`[approved: agreed with every client of ${PRICE_REMOVED}]`);
    expect(output).toMatch(
      /⚠ 1 approval\(s\) in \.ci\/schema-approvals\.yaml match no pending change.*Product\.colour/,
    );
  });

  it('runs from the CLI as CI does, exiting 1 on the break', async () => {
    const dir = await publishedRepo();
    setSdl(dir, WITHOUT_PRICE);
    commitAll(dir, 'drop Product.price');
    unrelatedCommits(dir, 1);
    const cli = spawnSync(
      process.execPath,
      [
        join(REPO_ROOT, 'node_modules/tsx/dist/cli.mjs'),
        '--conditions=aiva-source',
        join(REPO_ROOT, 'orchestrator/src/schema/cli.ts'),
        'check',
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(cli.status).toBe(1);
    expect(cli.stdout).toContain(`✘ ${PRICE_REMOVED}`);
    expect(cli.stdout).toContain('Schema check failed');
  });
});

describe('schema:publish', () => {
  it('refuses while a break is unapproved and leaves the baseline alone', async () => {
    const dir = await publishedRepo();
    const before = publishedText(dir);
    setSdl(dir, WITHOUT_PRICE);

    const refused = await publishSchema({ root: dir });
    expect(refused.ok).toBe(false);
    expect(refused.wrote).toBe(false);
    expect(refused.failures).toEqual([
      expect.stringContaining('1 unapproved breaking change(s) against .ci/published-schema.graphql'),
    ]);
    expect(refused.failures[0]).toContain(`- change: "${PRICE_REMOVED}"`);
    expect(refused.messages).toContain('Nothing published: .ci/published-schema.graphql is unchanged.');
    expect(publishedText(dir)).toBe(before);
  });

  it('refuses while supergraph.graphql is stale', async () => {
    const dir = await publishedRepo();
    writeFileSync(join(dir, 'subgraphs/products.graphql'), WITH_SKU);
    const refused = await publishSchema({ root: dir });
    expect(refused.ok).toBe(false);
    expect(refused.failures).toEqual([expect.stringMatching(/supergraph\.graphql is stale/)]);
  });

  it('moves the baseline once the break is approved, records the approval and prunes it', async () => {
    const dir = await publishedRepo();
    setSdl(dir, WITHOUT_PRICE_WITH_SKU);
    writeApprovals(dir, [PRICE_REMOVED, 'FIELD_REMOVED:Product.colour']);
    commitAll(dir, 'drop Product.price, approved');

    const published = await publishOk(dir);
    expect(published.wrote).toBe(true);
    expect(published.approved).toEqual([
      { change: PRICE_REMOVED, reason: `agreed with every client of ${PRICE_REMOVED}` },
    ]);
    expect(published.pruned.sort()).toEqual(['FIELD_REMOVED:Product.colour', PRICE_REMOVED]);
    expect(published.messages.join('\n')).toContain('2 change(s), 1 of them breaking and approved');
    const text = publishedText(dir);
    expect(text).toContain(`# approved: {"change":"${PRICE_REMOVED}","reason":"agreed with every client of`);
    expect(text).toContain('sku: String');
    expect(parsePublishedSchema(text, 'x').sdl).not.toContain('price');
    expect(loadApprovals(join(dir, '.ci/schema-approvals.yaml'))).toEqual([]);

    // Uncommitted and committed, the new baseline passes: its header covers its own break.
    const uncommitted = await check(dir);
    expect(uncommitted.failures).toEqual([]);
    commitAll(dir, 'publish');
    unrelatedCommits(dir, 2);
    const committed = await check(dir);
    expect(committed.ok).toBe(true);
    expect(committed.changes).toEqual([]);
    expect(committed.messages).toContain(
      '✔ 1 change(s) of .ci/published-schema.graphql verified: each lists its breaking changes as approved',
    );
  });

  it('publishes non-breaking changes without approvals, and writes nothing when nothing changed', async () => {
    const dir = await publishedRepo();
    const again = await publishOk(dir);
    expect(again.wrote).toBe(false);
    expect(again.messages).toContain(
      '✔ .ci/published-schema.graphql already holds this API schema: nothing to publish',
    );

    setSdl(dir, WITH_SKU);
    const additive = await publishOk(dir);
    expect(additive.wrote).toBe(true);
    expect(additive.approved).toEqual([]);
    expect(publishedText(dir)).toContain('# approved: none');
    expect(parsePublishedSchema(publishedText(dir), 'x').sdl).toBe(
      printApiSchema(readFileSync(join(dir, 'supergraph.graphql'), 'utf8')),
    );
  });
});

describe('schema:check verifies the history of the published schema', () => {
  it('fails when a hand-edited baseline hides a break, however many commits back', async () => {
    const dir = await publishedRepo();
    setSdl(dir, WITHOUT_PRICE);
    commitAll(dir, 'drop Product.price');
    handEditBaseline(dir);
    const hiding = commitAll(dir, 'refresh the published schema');
    unrelatedCommits(dir, 3);

    const result = await check(dir);
    expect(result.changes).toEqual([]); // against the (forged) baseline there is nothing to see…
    expect(result.ok).toBe(false); // …but its history gives it away
    expect(result.failures).toEqual([
      expect.stringContaining(
        `.ci/published-schema.graphql was changed in ${hiding.slice(0, 10)} (refresh the published schema) ` +
          'with breaking change(s) it does not list as approved',
      ),
    ]);
    expect(result.failures[0]).toContain(`${PRICE_REMOVED}: Field 'price' was removed`);
    expect(result.failures[0]).toContain(`- change: "${PRICE_REMOVED}"`);

    // Acknowledging the change (it already reached main) is an explicit, reviewed approval…
    writeApprovals(dir, [PRICE_REMOVED]);
    const acknowledged = await check(dir);
    expect(acknowledged.failures).toEqual([]);
    expect(acknowledged.messages.join('\n')).toContain(`${PRICE_REMOVED} acknowledged [approved:`);
    expect(acknowledged.messages.join('\n')).not.toContain('match no pending change');
    commitAll(dir, 'acknowledge the removal of Product.price');

    // …that a later publish keeps, since the history still needs it.
    setSdl(dir, WITHOUT_PRICE_WITH_SKU);
    const later = await publishOk(dir);
    expect(later.pruned).toEqual([]);
    expect(loadApprovals(join(dir, '.ci/schema-approvals.yaml')).map((a) => a.change)).toEqual([
      PRICE_REMOVED,
    ]);
    commitAll(dir, 'publish sku');
    expect((await check(dir)).ok).toBe(true);
  });

  it('fails for an uncommitted hand edit and for a baseline deleted and published afresh', async () => {
    const dir = await publishedRepo();
    setSdl(dir, WITHOUT_PRICE);
    handEditBaseline(dir);
    const uncommitted = await check(dir);
    expect(uncommitted.failures).toEqual([
      expect.stringContaining(
        '.ci/published-schema.graphql was changed in the working tree with breaking change',
      ),
    ]);

    git(dir, 'checkout', '--', PUBLISHED_SCHEMA_FILE);
    rmSync(join(dir, PUBLISHED_SCHEMA_FILE));
    commitAll(dir, 'drop Product.price and the published schema');
    const missing = await check(dir);
    expect(missing.failures).toEqual([expect.stringMatching(/published-schema\.graphql is missing/)]);

    const fresh = await publishOk(dir);
    expect(fresh.messages.join('\n')).toMatch(/does not exist: publishing the first version/);
    const republished = commitAll(dir, 'publish again');
    unrelatedCommits(dir, 1);
    const result = await check(dir);
    expect(result.changes).toEqual([]);
    expect(result.failures).toEqual([
      expect.stringContaining(
        `was changed in ${republished.slice(0, 10)} (publish again) with breaking change`,
      ),
    ]);
    expect(result.failures[0]).toContain(PRICE_REMOVED);
  });

  it('verifies every publish in the push, not only the last one', async () => {
    const dir = await publishedRepo();
    setSdl(dir, WITHOUT_PRICE);
    handEditBaseline(dir);
    const hiding = commitAll(dir, 'drop price and hide it');
    // A proper, approved publish on top must not launder the forged one below it.
    setSdl(dir, WITHOUT_NAME);
    writeApprovals(dir, ['FIELD_REMOVED:Product.name']);
    await publishOk(dir);
    commitAll(dir, 'drop name, approved and published');

    const result = await check(dir);
    expect(result.changes).toEqual([]);
    expect(result.failures).toEqual([expect.stringContaining(`changed in ${hiding.slice(0, 10)}`)]);
    expect(result.failures[0]).toContain(PRICE_REMOVED);
    expect(result.failures[0]).not.toContain('Product.name');
  });

  it('fails in a shallow clone whose history cannot be verified', async () => {
    const dir = await publishedRepo();
    setSdl(dir, WITH_SKU);
    await publishOk(dir);
    commitAll(dir, 'publish sku');

    const clone = makeTempDir();
    git(clone, 'clone', '--quiet', '--depth', '1', `file://${dir}`, 'repo');
    const shallow = join(clone, 'repo');
    expect(existsSync(join(shallow, PUBLISHED_SCHEMA_FILE))).toBe(true);
    const result = await check(shallow);
    expect(result.ok).toBe(false);
    expect(result.failures).toEqual([
      expect.stringMatching(
        /cannot verify the version in [0-9a-f]{10} \(publish sku\): this clone is shallow.*git fetch --unshallow/,
      ),
    ]);

    git(shallow, 'fetch', '--quiet', '--unshallow');
    expect((await check(shallow)).ok).toBe(true);
  });
});

describe('the real repository', () => {
  it('passes pnpm schema:check', async () => {
    const result = await runSchemaCheck({ root: REPO_ROOT, rover: null });
    expect(result.failures).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.operations?.operations.length).toBeGreaterThan(0);
  });
});

function composeFromConfigSdl(sdl: string): string {
  const dir = makeTempDir();
  mkdirSync(join(dir, 'subgraphs'));
  writeFileSync(join(dir, 'subgraphs/products.graphql'), sdl);
  writeFileSync(
    join(dir, 'supergraph.yaml'),
    'subgraphs:\n  products:\n    routing_url: http://p\n    schema:\n      file: ./subgraphs/products.graphql\n',
  );
  const outcome = composeFromConfig(loadSupergraphConfig(join(dir, 'supergraph.yaml')));
  if (!outcome.ok) throw new Error(outcome.errors.join('\n'));
  return outcome.supergraphSdl;
}
