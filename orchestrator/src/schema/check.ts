import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join, relative, resolve } from 'node:path';
import {
  APPROVALS_FILE,
  type Approval,
  approvalSnippet,
  type ChangeCriticality,
  findSchemaChanges,
  loadApprovals,
  type SchemaChange,
  unapprovedBreaking,
} from './breaking.js';
import { apiSchemaOf, composeFromConfig } from './compose.js';
import { loadSupergraphConfig, type SupergraphConfig } from './supergraph-config.js';

/** The committed composed supergraph, next to supergraph.yaml. */
export const SUPERGRAPH_ARTIFACT = 'supergraph.graphql';
export const SUPERGRAPH_CONFIG = 'supergraph.yaml';

export interface SchemaCheckOptions {
  /** Repository root: the directory holding supergraph.yaml and supergraph.graphql. */
  root: string;
  /** Defaults to `<root>/supergraph.yaml`. */
  configFile?: string;
  /** Git ref to compare against; defaults to `git merge-base HEAD main` (or `origin/main`). */
  base?: string;
  /** Path of a rover binary for the cross-check; looked up on PATH when omitted; `null` skips it. */
  rover?: string | null;
}

export interface SchemaCheckResult {
  ok: boolean;
  /** Everything to print, in order. */
  messages: string[];
  /** Why the check failed (empty when ok). */
  failures: string[];
  /** The changes against the base, when the breaking-change check ran. */
  changes: SchemaChange[] | undefined;
  /** Why the breaking-change check was skipped, when it was. */
  breakingCheckSkipped: string | undefined;
}

/**
 * The CI schema gate: composes supergraph.yaml, verifies the committed supergraph.graphql is current,
 * rejects unapproved breaking API changes against the base, and cross-checks with rover when available.
 * Never throws for an unusable repository state; everything is reported in the result.
 */
export async function runSchemaCheck(options: SchemaCheckOptions): Promise<SchemaCheckResult> {
  const root = resolve(options.root);
  const report = new Report();
  const configFile = resolve(root, options.configFile ?? SUPERGRAPH_CONFIG);
  const supergraphSdl = composeForCheck(configFile, report);
  if (supergraphSdl === undefined) return report.finish(undefined, undefined);

  checkArtifact(root, supergraphSdl, report);
  const breaking = await checkBreakingChanges(root, options.base, supergraphSdl, report);
  crossCheckWithRover(root, configFile, supergraphSdl, options.rover, report);
  return report.finish(breaking.changes, breaking.skipped);
}

// ---------------------------------------------------------------------------------------------------------
// Reporting

class Report {
  readonly messages: string[] = [];
  readonly failures: string[] = [];

  info(text: string): void {
    this.messages.push(text);
  }

  pass(text: string): void {
    this.messages.push(`✔ ${text}`);
  }

  fail(text: string): void {
    this.failures.push(text);
    this.messages.push(`✘ ${text}`);
  }

  finish(changes: SchemaChange[] | undefined, breakingCheckSkipped: string | undefined): SchemaCheckResult {
    const ok = this.failures.length === 0;
    this.info(ok ? 'Schema check passed.' : `Schema check failed (${this.failures.length} problem(s)).`);
    return { ok, messages: this.messages, failures: this.failures, changes, breakingCheckSkipped };
  }
}

// ---------------------------------------------------------------------------------------------------------
// (a) Composition

function composeForCheck(configFile: string, report: Report): string | undefined {
  let config: SupergraphConfig;
  try {
    config = loadSupergraphConfig(configFile);
  } catch (error) {
    report.fail(errorMessage(error));
    return undefined;
  }
  warnOnFederationVersionMismatch(config, report);
  const outcome = composeFromConfig(config);
  reportHints(outcome.hints, report);
  if (!outcome.ok) {
    report.fail(`composition failed with ${outcome.errors.length} error(s):\n${indent(outcome.errors)}`);
    return undefined;
  }
  const names = config.subgraphs.map((s) => s.name).join(', ');
  report.pass(`composed ${config.subgraphs.length} subgraph(s): ${names}`);
  return outcome.supergraphSdl;
}

function reportHints(hints: readonly string[], report: Report): void {
  if (hints.length === 0) return;
  report.info(`Composition hints (${hints.length}):\n${indent(hints)}`);
}

/** The installed @apollo/composition version, which is what actually composes. */
export function installedCompositionVersion(): string {
  const require = createRequire(import.meta.url);
  const pkg = require('@apollo/composition/package.json') as { version: string };
  return pkg.version;
}

function warnOnFederationVersionMismatch(config: SupergraphConfig, report: Report): void {
  const pinned = config.federationVersion?.match(/^=(\d+\.\d+\.\d+)$/)?.[1];
  const installed = installedCompositionVersion();
  if (pinned === undefined || pinned === installed) return;
  report.info(
    `⚠ supergraph.yaml pins federation_version =${pinned} but @apollo/composition ${installed} is installed; ` +
      `set federation_version: =${installed} so rover composes the same way`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// (b) Committed artifact

function checkArtifact(root: string, supergraphSdl: string, report: Report): void {
  const file = join(root, SUPERGRAPH_ARTIFACT);
  if (!existsSync(file)) {
    report.fail(`${SUPERGRAPH_ARTIFACT} is missing: run pnpm schema:compose and commit it`);
    return;
  }
  const committed = readFileSync(file, 'utf8').replace(/\r\n/g, '\n');
  if (committed !== supergraphSdl) {
    report.fail(
      `${SUPERGRAPH_ARTIFACT} is stale (it differs from composing ${SUPERGRAPH_CONFIG}): run pnpm schema:compose and commit it`,
    );
    return;
  }
  report.pass(`${SUPERGRAPH_ARTIFACT} is up to date`);
}

// ---------------------------------------------------------------------------------------------------------
// (c) Breaking changes against the base

interface BreakingCheckOutcome {
  changes: SchemaChange[] | undefined;
  skipped: string | undefined;
}

async function checkBreakingChanges(
  root: string,
  explicitBase: string | undefined,
  supergraphSdl: string,
  report: Report,
): Promise<BreakingCheckOutcome> {
  const skip = (reason: string): BreakingCheckOutcome => {
    report.info(`- breaking-change check skipped: ${reason}`);
    return { changes: undefined, skipped: reason };
  };

  const base = findBase(root, explicitBase);
  if (base.kind === 'error') {
    report.fail(base.reason);
    return { changes: undefined, skipped: undefined };
  }
  if (base.kind === 'skip') return skip(base.reason);

  const baseSdl = readAtRef(root, base.sha, SUPERGRAPH_ARTIFACT);
  if (baseSdl === undefined) return skip(`${base.label} has no ${SUPERGRAPH_ARTIFACT}`);
  try {
    apiSchemaOf(baseSdl);
  } catch (error) {
    return skip(`${SUPERGRAPH_ARTIFACT} at ${base.label} is not a valid supergraph: ${errorMessage(error)}`);
  }

  let approvals: Approval[];
  let changes: SchemaChange[];
  try {
    approvals = loadApprovals(join(root, APPROVALS_FILE));
    changes = await findSchemaChanges(baseSdl, supergraphSdl);
  } catch (error) {
    report.fail(errorMessage(error));
    return { changes: undefined, skipped: undefined };
  }
  reportChanges(base.label, changes, approvals, report);
  return { changes, skipped: undefined };
}

function reportChanges(
  baseLabel: string,
  changes: readonly SchemaChange[],
  approvals: readonly Approval[],
  report: Report,
): void {
  if (changes.length === 0) {
    report.pass(`no API schema changes against ${baseLabel}`);
    return;
  }
  report.info(`API schema changes against ${baseLabel} (${summarize(changes)}):`);
  const approvedReasons = new Map(approvals.map((a) => [a.change, a.reason]));
  for (const level of ['BREAKING', 'DANGEROUS', 'NON_BREAKING'] as const) {
    const group = changes.filter((c) => c.criticality === level);
    if (group.length === 0) continue;
    report.info(
      `  ${level} (${group.length}):\n${group.map((c) => formatChange(c, approvedReasons)).join('\n')}`,
    );
  }

  const unapproved = unapprovedBreaking(changes, approvals);
  if (unapproved.length === 0) {
    report.pass('no unapproved breaking changes');
    return;
  }
  report.fail(
    `${unapproved.length} unapproved breaking change(s). If intended, approve them in ${APPROVALS_FILE} ` +
      `by adding under \`approved:\`\n${unapproved.map(approvalSnippet).join('\n')}`,
  );
}

function formatChange(change: SchemaChange, approvedReasons: ReadonlyMap<string, string>): string {
  const approval = approvedReasons.get(change.id);
  const marker = change.criticality !== 'BREAKING' ? '·' : approval === undefined ? '✘' : '✔';
  const approvedNote =
    change.criticality === 'BREAKING' && approval !== undefined ? ` [approved: ${approval}]` : '';
  return `    ${marker} ${change.id}: ${change.message}${approvedNote}`;
}

function summarize(changes: readonly SchemaChange[]): string {
  const count = (level: ChangeCriticality) => changes.filter((c) => c.criticality === level).length;
  return `${count('BREAKING')} breaking, ${count('DANGEROUS')} dangerous, ${count('NON_BREAKING')} non-breaking`;
}

// ---------------------------------------------------------------------------------------------------------
// Git

type GitResult = { ok: true; stdout: string } | { ok: false; stderr: string; notInstalled: boolean };

function git(cwd: string, args: string[]): GitResult {
  const result = spawnSync('git', args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.error) {
    const notInstalled = (result.error as NodeJS.ErrnoException).code === 'ENOENT';
    return { ok: false, stderr: result.error.message, notInstalled };
  }
  if (result.status !== 0) return { ok: false, stderr: result.stderr.trim(), notInstalled: false };
  return { ok: true, stdout: result.stdout };
}

function resolveCommit(root: string, ref: string): string | undefined {
  const result = git(root, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  return result.ok ? result.stdout.trim() : undefined;
}

type Base =
  | { kind: 'base'; sha: string; label: string }
  | { kind: 'skip'; reason: string }
  | { kind: 'error'; reason: string };

const DEFAULT_BASE_BRANCHES = ['main', 'origin/main'];

function findBase(root: string, explicitBase: string | undefined): Base {
  const inRepo = git(root, ['rev-parse', '--is-inside-work-tree']);
  if (!inRepo.ok) {
    return {
      kind: 'skip',
      reason: inRepo.notInstalled ? 'git is not installed' : `${root} is not in a git repository`,
    };
  }
  if (explicitBase !== undefined) return explicitBaseCommit(root, explicitBase);
  if (resolveCommit(root, 'HEAD') === undefined)
    return { kind: 'skip', reason: 'the repository has no commits yet' };

  const branches = DEFAULT_BASE_BRANCHES.filter((branch) => resolveCommit(root, branch) !== undefined);
  if (branches.length === 0) {
    return {
      kind: 'skip',
      reason: 'no `main` or `origin/main` branch to compare against (pass --base <ref>)',
    };
  }
  for (const branch of branches) {
    const mergeBase = git(root, ['merge-base', 'HEAD', branch]);
    if (mergeBase.ok) {
      const sha = mergeBase.stdout.trim();
      return { kind: 'base', sha, label: `merge-base of HEAD and ${branch} (${sha.slice(0, 10)})` };
    }
  }
  return {
    kind: 'skip',
    reason: `HEAD has no common ancestor with ${branches.join(' or ')} (shallow clone?)`,
  };
}

function explicitBaseCommit(root: string, ref: string): Base {
  const sha = resolveCommit(root, ref);
  if (sha === undefined) return { kind: 'error', reason: `--base ${ref} is not a commit in this repository` };
  return { kind: 'base', sha, label: `${ref} (${sha.slice(0, 10)})` };
}

/** A file's content at a commit, or undefined when the commit does not have it. */
function readAtRef(root: string, sha: string, fileInRoot: string): string | undefined {
  // `./` makes the path relative to `root`, which need not be the top of the git work tree.
  const result = git(root, ['show', `${sha}:./${fileInRoot}`]);
  return result.ok ? result.stdout : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// (d) Rover cross-check

function crossCheckWithRover(
  root: string,
  configFile: string,
  supergraphSdl: string,
  roverOption: string | null | undefined,
  report: Report,
): void {
  if (roverOption === null) {
    report.info('- rover cross-check disabled');
    return;
  }
  const rover = roverOption ?? findOnPath('rover');
  if (rover === undefined) {
    report.info('- rover not on PATH: skipped cross-check');
    return;
  }
  const result = spawnSync(
    rover,
    ['supergraph', 'compose', '--config', relative(root, configFile) || configFile],
    {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, APOLLO_ELV2_LICENSE: 'accept' },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 5 * 60 * 1000,
    },
  );
  if (result.error || result.status !== 0) {
    const detail = result.error ? result.error.message : result.stderr.trim();
    report.fail(`rover supergraph compose failed (${rover}): ${detail}`);
    return;
  }
  const difference = firstDifferenceIgnoringWhitespace(result.stdout, supergraphSdl);
  if (difference !== undefined) {
    report.fail(`rover's supergraph differs from ours (ignoring whitespace) ${difference}`);
    return;
  }
  report.pass(`rover composes the same supergraph (${rover})`);
}

/** Locates an executable by name on PATH (no shell involved). */
export function findOnPath(name: string, pathVariable = process.env.PATH ?? ''): string | undefined {
  for (const directory of pathVariable.split(delimiter)) {
    if (directory === '') continue;
    const candidate = join(directory, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Undefined when equal once all whitespace is removed; otherwise where they first differ. */
export function firstDifferenceIgnoringWhitespace(theirs: string, ours: string): string | undefined {
  const a = theirs.replace(/\s+/g, '');
  const b = ours.replace(/\s+/g, '');
  if (a === b) return undefined;
  let index = 0;
  while (index < a.length && index < b.length && a[index] === b[index]) index++;
  const excerpt = (s: string) => JSON.stringify(s.slice(Math.max(0, index - 40), index + 40));
  return `near rover: ${excerpt(a)} vs ours: ${excerpt(b)}`;
}

// ---------------------------------------------------------------------------------------------------------

function indent(lines: readonly string[]): string {
  return lines.map((line) => `  - ${line.replace(/\n/g, '\n    ')}`).join('\n');
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
