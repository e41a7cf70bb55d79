import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  apiSchemaOf,
  composeFromConfig,
  composeSupergraph,
  findSchemaChanges,
  loadSupergraphConfig,
  runSchemaCheck,
  SupergraphConfigError,
} from '../src/index.js';
import { changeId } from '../src/schema/breaking.js';
import { firstDifferenceIgnoringWhitespace } from '../src/schema/check.js';
import { publishSchema } from '../src/schema/publish.js';

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

const PRODUCTS_WITHOUT_PRICE = PRODUCTS_SDL.replace('  price: Int!\n', '');
const PRODUCTS_WITH_SKU = PRODUCTS_SDL.replace('  price: Int!\n', '  price: Int!\n  sku: String\n');

// ---------------------------------------------------------------------------------------------------------
// Helpers

const tempDirs: string[] = [];

afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function makeTempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'aiva-schema-'));
  tempDirs.push(dir);
  return dir;
}

/** A one-subgraph project in `dir`: supergraph.yaml + subgraphs/products.graphql. */
function writeProject(dir: string, sdl: string = PRODUCTS_SDL): void {
  mkdirSync(join(dir, 'subgraphs'), { recursive: true });
  writeFileSync(
    join(dir, 'supergraph.yaml'),
    [
      'federation_version: =2.14.4',
      'subgraphs:',
      '  products:',
      '    routing_url: http://127.0.0.1:4010/graphql',
      '    schema:',
      '      file: ./subgraphs/products.graphql',
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'subgraphs/products.graphql'), sdl);
}

function setSubgraphSdl(dir: string, sdl: string): void {
  writeFileSync(join(dir, 'subgraphs/products.graphql'), sdl);
}

/** What `pnpm schema:compose` does: compose supergraph.yaml and write supergraph.graphql. */
function composeArtifact(dir: string): string {
  const outcome = composeFromConfig(loadSupergraphConfig(join(dir, 'supergraph.yaml')));
  if (!outcome.ok) throw new Error(outcome.errors.join('\n'));
  writeFileSync(join(dir, 'supergraph.graphql'), outcome.supergraphSdl);
  return outcome.supergraphSdl;
}

function composeSdl(sdl: string): string {
  const outcome = composeSupergraph([{ name: 'products', url: 'http://products', sdl }]);
  if (!outcome.ok) throw new Error(outcome.errors.join('\n'));
  return outcome.supergraphSdl;
}

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function initGitRepo(dir: string): void {
  git(dir, 'init', '--quiet', '--initial-branch=main');
  git(dir, 'config', 'user.email', 'schema-test@example.com');
  git(dir, 'config', 'user.name', 'Schema Test');
  git(dir, 'config', 'commit.gpgsign', 'false');
}

function commitAll(dir: string, message: string): void {
  git(dir, 'add', '-A');
  git(dir, 'commit', '--quiet', '-m', message);
}

/** What `pnpm schema:publish` does: the current API becomes the baseline of the check. */
async function publish(dir: string): Promise<void> {
  const result = await publishSchema({ root: dir });
  if (!result.ok) throw new Error(result.messages.join('\n'));
}

function approve(dir: string, changeIdToApprove: string): void {
  mkdirSync(join(dir, '.ci'), { recursive: true });
  writeFileSync(
    join(dir, '.ci/schema-approvals.yaml'),
    `approved:\n  - change: "${changeIdToApprove}"\n    reason: "price moved to the pricing subgraph"\n`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Config

describe('loadSupergraphConfig', () => {
  it('reads the repository supergraph.yaml with absolute schema paths', () => {
    const config = loadSupergraphConfig(join(REPO_ROOT, 'supergraph.yaml'));
    const users = config.subgraphs.find((s) => s.name === 'users');
    expect(users?.schemaFile).toBe(join(REPO_ROOT, 'subgraphs/users/schema.graphql'));
    expect(users?.routingUrl).toMatch(/^http/);
    expect(users?.sdl).toContain('type User');
    expect(config.federationVersion).toMatch(/^=2\./);
  });

  it('names every bad field and unsupported schema source', () => {
    const dir = makeTempDir();
    writeFileSync(
      join(dir, 'supergraph.yaml'),
      [
        'subgraphs:',
        '  remote:',
        '    routing_url: http://remote/graphql',
        '    schema:',
        '      subgraph_url: http://remote/graphql',
        '  nourl:',
        '    schema:',
        '      file: ./x.graphql',
        '',
      ].join('\n'),
    );
    const load = () => loadSupergraphConfig(join(dir, 'supergraph.yaml'));
    expect(load).toThrow(SupergraphConfigError);
    expect(load).toThrow(/subgraphs\.nourl\.routing_url: is required/);

    writeFileSync(
      join(dir, 'supergraph.yaml'),
      'subgraphs:\n  remote:\n    routing_url: http://r\n    schema:\n      subgraph_url: http://r\n  local:\n    routing_url: http://l\n    schema:\n      file: ./missing.graphql\n',
    );
    expect(load).toThrow(/subgraphs\.remote\.schema: only `file` schema sources.*found `subgraph_url`/);
    expect(load).toThrow(/subgraphs\.local\.schema\.file: cannot read .*missing\.graphql/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Composition

describe('composeSupergraph', () => {
  it('composes the real repository config', () => {
    const outcome = composeFromConfig(loadSupergraphConfig(join(REPO_ROOT, 'supergraph.yaml')));
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.supergraphSdl).toContain('@join__graph(name: "users"');
    expect(outcome.supergraphSdl.endsWith('}\n')).toBe(true);
    const api = apiSchemaOf(outcome.supergraphSdl);
    expect(api.getQueryType()?.getFields().user).toBeDefined();
    expect(api.getType('join__Graph')).toBeUndefined();
  });

  it('reports conflicting field types as errors naming the field and subgraphs', () => {
    const outcome = composeSupergraph([
      {
        name: 'a',
        url: 'http://a',
        sdl: `${LINK}type Query { a: Thing } type Thing @key(fields: "id") { id: ID! name: String }`,
      },
      {
        name: 'b',
        url: 'http://b',
        sdl: `${LINK}type Query { b: Thing } type Thing @key(fields: "id") { id: ID! name: Int }`,
      },
    ]);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(
      outcome.errors.some((e) => e.includes('Thing.name') && e.includes('"a"') && e.includes('"b"')),
    ).toBe(true);
  });

  it('reports a bad @key as an error naming the subgraph', () => {
    const outcome = composeSupergraph([
      {
        name: 'things',
        url: 'http://t',
        sdl: `${LINK}type Query { t: Thing } type Thing @key(fields: "nope") { id: ID! }`,
      },
    ]);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.errors).toEqual([expect.stringMatching(/^KEY_INVALID_FIELDS: \[things\].*"nope"/)]);
  });

  it('reports SDL syntax errors instead of throwing', () => {
    const outcome = composeSupergraph([
      { name: 'products', url: 'http://p', sdl: PRODUCTS_SDL },
      { name: 'broken', url: 'http://b', sdl: 'type Query {' },
    ]);
    expect(outcome).toEqual({
      ok: false,
      errors: [expect.stringMatching(/^\[broken\] SDL syntax error: .*line 1, column 13/)],
      hints: [],
    });
  });

  it('is deterministic whatever the input order', () => {
    const a = { name: 'a', url: 'http://a', sdl: `${LINK}type Query { a: Int }` };
    const b = { name: 'b', url: 'http://b', sdl: `${LINK}type Query { b: String }` };
    const first = composeSupergraph([a, b]);
    const second = composeSupergraph([b, a]);
    const third = composeSupergraph([a, b]);
    expect(first.ok).toBe(true);
    if (!first.ok || !second.ok || !third.ok) return;
    expect(second.supergraphSdl).toBe(first.supergraphSdl);
    expect(third.supergraphSdl).toBe(first.supergraphSdl);
    expect(first.supergraphSdl.endsWith('\n')).toBe(true);
    expect(first.supergraphSdl.endsWith('\n\n')).toBe(false);
  });

  it('matches the committed supergraph.graphql', () => {
    const outcome = composeFromConfig(loadSupergraphConfig(join(REPO_ROOT, 'supergraph.yaml')));
    expect(outcome.ok && outcome.supergraphSdl).toBe(
      readFileSync(join(REPO_ROOT, 'supergraph.graphql'), 'utf8'),
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// Breaking changes

describe('findSchemaChanges', () => {
  it('classifies a removed field as BREAKING', async () => {
    const changes = await findSchemaChanges(composeSdl(PRODUCTS_SDL), composeSdl(PRODUCTS_WITHOUT_PRICE));
    expect(changes).toEqual([
      expect.objectContaining({ id: 'FIELD_REMOVED:Product.price', criticality: 'BREAKING' }),
    ]);
    expect(changes[0]?.message).toContain('price');
  });

  it('classifies an added field as NON_BREAKING', async () => {
    const changes = await findSchemaChanges(composeSdl(PRODUCTS_SDL), composeSdl(PRODUCTS_WITH_SKU));
    expect(changes).toEqual([
      expect.objectContaining({ id: 'FIELD_ADDED:Product.sku', criticality: 'NON_BREAKING' }),
    ]);
  });

  it('ignores supergraph-only differences such as routing URLs', async () => {
    const one = composeSupergraph([{ name: 'products', url: 'http://one', sdl: PRODUCTS_SDL }]);
    const two = composeSupergraph([{ name: 'products', url: 'http://two', sdl: PRODUCTS_SDL }]);
    if (!one.ok || !two.ok) throw new Error('composition failed');
    expect(await findSchemaChanges(one.supergraphSdl, two.supergraphSdl)).toEqual([]);
  });

  it('builds ids from type and path', () => {
    expect(changeId({ type: 'FIELD_REMOVED', path: 'User.email' })).toBe('FIELD_REMOVED:User.email');
  });
});

// ---------------------------------------------------------------------------------------------------------
// The check

describe('runSchemaCheck', () => {
  it('fails when supergraph.graphql is missing or stale, or nothing was published', async () => {
    const dir = makeTempDir();
    writeProject(dir);

    const missing = await runSchemaCheck({ root: dir, rover: null });
    expect(missing.ok).toBe(false);
    expect(missing.failures).toEqual([
      expect.stringMatching(/^supergraph\.graphql is missing: run pnpm schema:compose/),
      expect.stringMatching(/^\.ci\/published-schema\.graphql is missing: .*run pnpm schema:publish/),
    ]);

    composeArtifact(dir);
    const unpublished = await runSchemaCheck({ root: dir, rover: null });
    expect(unpublished.failures).toEqual([expect.stringMatching(/published-schema\.graphql is missing/)]);

    await publish(dir);
    setSubgraphSdl(dir, PRODUCTS_WITH_SKU);
    const stale = await runSchemaCheck({ root: dir, rover: null });
    expect(stale.ok).toBe(false);
    expect(stale.failures).toEqual([
      expect.stringMatching(/supergraph\.graphql is stale.*run pnpm schema:compose/),
    ]);

    composeArtifact(dir);
    const fresh = await runSchemaCheck({ root: dir, rover: null });
    expect(fresh.ok).toBe(true);
    expect(fresh.changes?.map((c) => c.id)).toEqual(['FIELD_ADDED:Product.sku']);
    expect(fresh.historySkipped).toMatch(/not in a git repository/);
  });

  it('fails on composition errors', async () => {
    const dir = makeTempDir();
    writeProject(dir, PRODUCTS_SDL.replace('@key(fields: "id")', '@key(fields: "sku")'));
    const result = await runSchemaCheck({ root: dir, rover: null });
    expect(result.ok).toBe(false);
    expect(result.failures[0]).toMatch(
      /composition failed with 1 error\(s\):[\s\S]*KEY_INVALID_FIELDS: \[products\]/,
    );
  });

  it('rejects an unapproved breaking change against the published schema and a base ref, and accepts it once approved', async () => {
    const dir = makeTempDir();
    initGitRepo(dir);
    writeProject(dir);
    composeArtifact(dir);
    await publish(dir);
    commitAll(dir, 'products subgraph');

    git(dir, 'checkout', '--quiet', '-b', 'feature');
    setSubgraphSdl(dir, PRODUCTS_WITHOUT_PRICE);
    composeArtifact(dir);

    const rejected = await runSchemaCheck({ root: dir, base: 'main', rover: null });
    expect(rejected.ok).toBe(false);
    expect(rejected.changes?.map((c) => c.id)).toEqual(['FIELD_REMOVED:Product.price']);
    expect(rejected.baseChanges?.map((c) => c.id)).toEqual(['FIELD_REMOVED:Product.price']);
    expect(rejected.failures).toEqual([
      expect.stringContaining('1 unapproved breaking change(s) against the published schema'),
      expect.stringMatching(/^1 unapproved breaking change\(s\) against main \(/),
    ]);
    expect(rejected.failures[0]).toContain('- change: "FIELD_REMOVED:Product.price"');
    expect(rejected.messages.join('\n')).toMatch(/BREAKING \(1\):\n\s+✘ FIELD_REMOVED:Product\.price/);

    // Without --base, the published schema alone catches it.
    commitAll(dir, 'drop price');
    const withoutBase = await runSchemaCheck({ root: dir, rover: null });
    expect(withoutBase.ok).toBe(false);
    expect(withoutBase.baseChanges).toBeUndefined();
    expect(withoutBase.failures).toEqual([expect.stringContaining('against the published schema')]);

    approve(dir, 'FIELD_REMOVED:Product.price');
    const approved = await runSchemaCheck({ root: dir, base: 'main', rover: null });
    expect(approved.failures).toEqual([]);
    expect(approved.ok).toBe(true);
    expect(approved.messages.join('\n')).toContain('[approved: price moved to the pricing subgraph]');
  });

  it('passes non-breaking changes and skips when the base has no supergraph.graphql', async () => {
    const dir = makeTempDir();
    initGitRepo(dir);
    writeProject(dir);
    commitAll(dir, 'config only');
    composeArtifact(dir);
    await publish(dir);

    const noArtifactAtBase = await runSchemaCheck({ root: dir, base: 'HEAD', rover: null });
    expect(noArtifactAtBase.ok).toBe(true);
    expect(noArtifactAtBase.breakingCheckSkipped).toMatch(/has no supergraph\.graphql/);

    commitAll(dir, 'artifact');
    setSubgraphSdl(dir, PRODUCTS_WITH_SKU);
    composeArtifact(dir);
    const additive = await runSchemaCheck({ root: dir, base: 'HEAD', rover: null });
    expect(additive.ok).toBe(true);
    expect(additive.baseChanges?.map((c) => [c.id, c.criticality])).toEqual([
      ['FIELD_ADDED:Product.sku', 'NON_BREAKING'],
    ]);
  });

  it('fails for a --base ref that does not exist', async () => {
    const dir = makeTempDir();
    initGitRepo(dir);
    writeProject(dir);
    composeArtifact(dir);
    await publish(dir);
    commitAll(dir, 'init');
    const result = await runSchemaCheck({ root: dir, base: 'no-such-branch', rover: null });
    expect(result.ok).toBe(false);
    expect(result.failures).toEqual(['--base no-such-branch is not a commit in this repository']);
  });

  it('rejects a malformed approvals file', async () => {
    const dir = makeTempDir();
    initGitRepo(dir);
    writeProject(dir);
    composeArtifact(dir);
    commitAll(dir, 'init');
    mkdirSync(join(dir, '.ci'));
    writeFileSync(
      join(dir, '.ci/schema-approvals.yaml'),
      'approved:\n  - change: "FIELD_REMOVED:Product.price"\n',
    );
    const result = await runSchemaCheck({ root: dir, base: 'HEAD', rover: null });
    expect(result.ok).toBe(false);
    expect(result.failures[0]).toMatch(/schema-approvals\.yaml[\s\S]*approved\.0\.reason/);
  });

  it('cross-checks with rover when one is available', async () => {
    const dir = makeTempDir();
    writeProject(dir);
    const ours = composeArtifact(dir);
    await publish(dir);

    const fakeRover = join(dir, 'rover');
    const reformatted = ours.replace(/\n\s*/g, '\n    ');
    writeFileSync(join(dir, 'rover-output.graphql'), reformatted);
    writeFileSync(
      fakeRover,
      `#!/bin/sh\ntest "$APOLLO_ELV2_LICENSE" = accept || exit 3\ncat "${dir}/rover-output.graphql"\n`,
    );
    chmodSync(fakeRover, 0o755);
    const same = await runSchemaCheck({ root: dir, rover: fakeRover });
    expect(same.ok).toBe(true);
    expect(same.messages).toContain(`✔ rover composes the same supergraph (${fakeRover})`);

    writeFileSync(join(dir, 'rover-output.graphql'), ours.replace('price: Int!', 'price: Float!'));
    const different = await runSchemaCheck({ root: dir, rover: fakeRover });
    expect(different.ok).toBe(false);
    expect(different.failures[0]).toMatch(/rover's supergraph differs from ours/);
  });

  it('fails when rover itself fails', async () => {
    const dir = makeTempDir();
    writeProject(dir);
    composeArtifact(dir);
    await publish(dir);
    const result = await runSchemaCheck({ root: dir, rover: join(dir, 'not-installed') });
    expect(result.ok).toBe(false);
    expect(result.failures[0]).toMatch(/rover supergraph compose failed/);
    expect(firstDifferenceIgnoringWhitespace('a b\n c', 'abc')).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------------
// CLI

describe('schema CLI', () => {
  const tsxCli = join(REPO_ROOT, 'node_modules/tsx/dist/cli.mjs');
  const cli = join(REPO_ROOT, 'orchestrator/src/schema/cli.ts');
  const runCli = (cwd: string, ...args: string[]) =>
    spawnSync(process.execPath, [tsxCli, '--conditions=aiva-source', cli, ...args], {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, PATH: '' },
    });

  it('compose writes supergraph.graphql found by walking up; publish, then check passes; errors exit 1', () => {
    const dir = makeTempDir();
    writeProject(dir);
    mkdirSync(join(dir, 'nested/deeper'), { recursive: true });

    const compose = runCli(join(dir, 'nested/deeper'), 'compose');
    expect(compose.stderr).toBe('');
    expect(compose.status).toBe(0);
    expect(readFileSync(join(dir, 'supergraph.graphql'), 'utf8')).toBe(composeSdlFromDir(dir));

    const unpublished = runCli(dir, 'check');
    expect(unpublished.status).toBe(1);
    expect(unpublished.stdout).toContain('run pnpm schema:publish');

    const publishRun = runCli(dir, 'publish');
    expect(publishRun.stdout).toContain(
      'published the API schema to .ci/published-schema.graphql (first version)',
    );
    expect(publishRun.status).toBe(0);

    const check = runCli(dir, 'check');
    expect(check.status).toBe(0);
    expect(check.stdout).toContain('rover not on PATH: skipped cross-check');

    setSubgraphSdl(dir, 'type Query {');
    const broken = runCli(dir, 'compose', '--config', join(dir, 'supergraph.yaml'));
    expect(broken.status).toBe(1);
    expect(broken.stderr).toContain('[products] SDL syntax error');
    // Five CLI processes, each compiling the CLI from source with tsx: seconds each on a loaded CI machine.
  }, 120_000);
});

function composeSdlFromDir(dir: string): string {
  const outcome = composeFromConfig(loadSupergraphConfig(join(dir, 'supergraph.yaml')));
  if (!outcome.ok) throw new Error(outcome.errors.join('\n'));
  return outcome.supergraphSdl;
}
