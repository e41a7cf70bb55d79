import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join, relative, resolve } from 'node:path';
import type { GraphQLSchema } from 'graphql';
import {
  APPROVALS_FILE,
  type Approval,
  approvalSnippet,
  type ChangeCriticality,
  diffApiSchemas,
  loadApprovals,
  type SchemaChange,
  unapprovedBreaking,
} from './breaking.js';
import { apiSchemaOf, composeFromConfig } from './compose.js';
import { notAGitRepository, readAtRef, resolveCommit } from './git.js';
import { verifyPublishedHistory } from './history.js';
import {
  checkOperations,
  findOperationFiles,
  formatOperationProblem,
  type OperationCheckOutcome,
} from './operations.js';
import { PUBLISHED_SCHEMA_FILE, type PublishedSchema, parsePublishedSchema } from './published.js';
import { loadSupergraphConfig, type SupergraphConfig } from './supergraph-config.js';

/** The committed composed supergraph, next to supergraph.yaml. */
export const SUPERGRAPH_ARTIFACT = 'supergraph.graphql';
export const SUPERGRAPH_CONFIG = 'supergraph.yaml';

export interface SchemaCheckOptions {
  /** Repository root: the directory holding supergraph.yaml, supergraph.graphql and .ci/. */
  root: string;
  /** Defaults to `<root>/supergraph.yaml`. */
  configFile?: string;
  /**
   * A git ref to compare against as well (its committed supergraph.graphql), e.g. the target branch of a pull
   * request. The published schema is always compared against; there is no implicit base.
   */
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
  /** The API changes against the published schema, when it could be read. */
  changes: SchemaChange[] | undefined;
  /** The API changes against `--base`, when one was given and compared. */
  baseChanges: SchemaChange[] | undefined;
  /** Why the comparison with `--base` was skipped, when it was. */
  breakingCheckSkipped: string | undefined;
  /** Why the history of the published schema was not verified, when it was not. */
  historySkipped: string | undefined;
  /** The operation files and operations checked, when the supergraph composed. */
  operations: OperationCheckOutcome | undefined;
}

/**
 * The CI schema gate: composes supergraph.yaml, verifies the committed supergraph.graphql is current, rejects
 * unapproved breaking API changes against the published schema (and `--base`, when given), verifies the
 * published schema only ever changed with its breaking changes approved, validates every client operation
 * against the new API schema, and cross-checks with rover when available.
 * Never throws for an unusable repository state; everything is reported in the result.
 */
export async function runSchemaCheck(options: SchemaCheckOptions): Promise<SchemaCheckResult> {
  const root = resolve(options.root);
  const report = new Report();
  const result: Omit<SchemaCheckResult, 'ok' | 'messages' | 'failures'> = {
    changes: undefined,
    baseChanges: undefined,
    breakingCheckSkipped: undefined,
    historySkipped: undefined,
    operations: undefined,
  };
  const finish = (): SchemaCheckResult => ({ ...report.finish(), ...result });

  const configFile = resolve(root, options.configFile ?? SUPERGRAPH_CONFIG);
  const composed = composeForCheck(configFile, report);
  if (composed === undefined) return finish();
  checkArtifact(root, composed.supergraphSdl, report);
  const api = apiSchemaForCheck(composed.supergraphSdl, report);
  if (api === undefined) return finish();

  const approvals = approvalsForCheck(root, report);
  const pending = new Set<string>();
  if (approvals !== undefined) {
    const published = await checkAgainstPublished(root, api, approvals, report);
    result.changes = published?.changes;
    for (const change of published?.changes ?? []) pending.add(change.id);
    if (options.base !== undefined) {
      const base = await checkAgainstBase(root, options.base, api, approvals, report);
      result.baseChanges = base.changes;
      result.breakingCheckSkipped = base.skipped;
      for (const change of base.changes ?? []) pending.add(change.id);
    }
    const history = await checkPublishedHistory(root, approvals, report);
    result.historySkipped = history.skipped;
    for (const id of history.acknowledged) pending.add(id);
    reportStaleApprovals(approvals, pending, report);
  }

  result.operations = checkOperationsStep(root, composed.config, api, report);
  crossCheckWithRover(root, configFile, composed.supergraphSdl, options.rover, report);
  return finish();
}

// ---------------------------------------------------------------------------------------------------------
// Reporting

export class Report {
  readonly messages: string[] = [];
  readonly failures: string[] = [];

  info(text: string): void {
    this.messages.push(text);
  }

  pass(text: string): void {
    this.messages.push(`✔ ${text}`);
  }

  warn(text: string): void {
    this.messages.push(`⚠ ${text}`);
  }

  fail(text: string): void {
    this.failures.push(text);
    this.messages.push(`✘ ${text}`);
  }

  get ok(): boolean {
    return this.failures.length === 0;
  }

  finish(what = 'Schema check'): { ok: boolean; messages: string[]; failures: string[] } {
    const ok = this.ok;
    this.info(ok ? `${what} passed.` : `${what} failed (${this.failures.length} problem(s)).`);
    return { ok, messages: this.messages, failures: this.failures };
  }
}

// ---------------------------------------------------------------------------------------------------------
// (a) Composition

export interface Composed {
  config: SupergraphConfig;
  supergraphSdl: string;
}

export function composeForCheck(configFile: string, report: Report): Composed | undefined {
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
  return { config, supergraphSdl: outcome.supergraphSdl };
}

export function apiSchemaForCheck(supergraphSdl: string, report: Report): GraphQLSchema | undefined {
  try {
    return apiSchemaOf(supergraphSdl);
  } catch (error) {
    report.fail(`the composed supergraph has no usable API schema: ${errorMessage(error)}`);
    return undefined;
  }
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
  report.warn(
    `supergraph.yaml pins federation_version =${pinned} but @apollo/composition ${installed} is installed; ` +
      `set federation_version: =${installed} so rover composes the same way`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// (b) Committed artifact

export function checkArtifact(root: string, supergraphSdl: string, report: Report): void {
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
// (c) Breaking changes against the published schema (and --base)

export function approvalsForCheck(root: string, report: Report): Approval[] | undefined {
  try {
    return loadApprovals(join(root, APPROVALS_FILE));
  } catch (error) {
    report.fail(errorMessage(error));
    return undefined;
  }
}

/** The published schema in the working tree: undefined (reported) when missing or unusable. */
function readPublished(
  root: string,
  report: Report,
): { text: string; published: PublishedSchema } | undefined {
  const file = join(root, PUBLISHED_SCHEMA_FILE);
  if (!existsSync(file)) {
    report.fail(
      `${PUBLISHED_SCHEMA_FILE} is missing: breaking changes need a published schema to compare with; ` +
        'run pnpm schema:publish and commit it (from a commit whose API clients may rely on)',
    );
    return undefined;
  }
  const text = readFileSync(file, 'utf8');
  try {
    return { text, published: parsePublishedSchema(text, 'in the working tree') };
  } catch (error) {
    report.fail(errorMessage(error));
    return undefined;
  }
}

async function checkAgainstPublished(
  root: string,
  api: GraphQLSchema,
  approvals: readonly Approval[],
  report: Report,
): Promise<{ changes: SchemaChange[] } | undefined> {
  const current = readPublished(root, report);
  if (current === undefined) return undefined;
  let changes: SchemaChange[];
  try {
    changes = await diffApiSchemas(current.published.schema, api);
  } catch (error) {
    report.fail(`cannot diff against ${PUBLISHED_SCHEMA_FILE}: ${errorMessage(error)}`);
    return undefined;
  }
  reportChanges(`the published schema (${PUBLISHED_SCHEMA_FILE})`, changes, approvals, report);
  return { changes };
}

interface BaseOutcome {
  changes: SchemaChange[] | undefined;
  skipped: string | undefined;
}

async function checkAgainstBase(
  root: string,
  ref: string,
  api: GraphQLSchema,
  approvals: readonly Approval[],
  report: Report,
): Promise<BaseOutcome> {
  const skip = (reason: string): BaseOutcome => {
    report.info(`- comparison with --base ${ref} skipped: ${reason}`);
    return { changes: undefined, skipped: reason };
  };
  const notRepository = notAGitRepository(root);
  if (notRepository !== undefined) return skip(notRepository);
  const sha = resolveCommit(root, ref);
  if (sha === undefined) {
    report.fail(`--base ${ref} is not a commit in this repository`);
    return { changes: undefined, skipped: undefined };
  }
  const label = `${ref} (${sha.slice(0, 10)})`;
  const baseSdl = readAtRef(root, sha, SUPERGRAPH_ARTIFACT);
  if (baseSdl === undefined) return skip(`${label} has no ${SUPERGRAPH_ARTIFACT}`);
  let baseApi: GraphQLSchema;
  try {
    baseApi = apiSchemaOf(baseSdl);
  } catch (error) {
    return skip(`${SUPERGRAPH_ARTIFACT} at ${label} is not a valid supergraph: ${errorMessage(error)}`);
  }
  const changes = await diffApiSchemas(baseApi, api);
  reportChanges(label, changes, approvals, report);
  return { changes, skipped: undefined };
}

function reportChanges(
  againstLabel: string,
  changes: readonly SchemaChange[],
  approvals: readonly Approval[],
  report: Report,
): void {
  if (changes.length === 0) {
    report.pass(`no API schema changes against ${againstLabel}`);
    return;
  }
  report.info(`API schema changes against ${againstLabel} (${summarize(changes)}):`);
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
    report.pass(`no unapproved breaking changes against ${againstLabel}`);
    return;
  }
  report.fail(
    `${unapproved.length} unapproved breaking change(s) against ${againstLabel}. If intended, approve them ` +
      `in ${APPROVALS_FILE} by adding under \`approved:\`\n${unapproved.map(approvalSnippet).join('\n')}`,
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
// (d) History of the published schema

export interface HistoryCheckOutcome {
  /** Ids of breaking changes in the history that only the approvals file covers (they must stay approved). */
  acknowledged: Set<string>;
  /** Whether every version could be verified (false when skipped, shallow, or git failed). */
  complete: boolean;
  skipped: string | undefined;
}

/**
 * Every version of the published schema must list, as approved, the breaking changes it made against the
 * version before it (schema:publish does). A version that does not (the file was edited by hand) fails the
 * check unless the change is approved in the approvals file, which then acknowledges it for good.
 */
export async function checkPublishedHistory(
  root: string,
  approvals: readonly Approval[],
  report: Report,
): Promise<HistoryCheckOutcome> {
  const file = join(root, PUBLISHED_SCHEMA_FILE);
  const workingTree = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  const acknowledged = new Set<string>();
  let history: Awaited<ReturnType<typeof verifyPublishedHistory>>;
  try {
    history = await verifyPublishedHistory(root, workingTree);
  } catch (error) {
    report.fail(`cannot verify the history of ${PUBLISHED_SCHEMA_FILE}: ${errorMessage(error)}`);
    return { acknowledged, complete: false, skipped: undefined };
  }
  if (history.kind === 'skipped') {
    report.info(`- history of ${PUBLISHED_SCHEMA_FILE} not verified: ${history.reason}`);
    return { acknowledged, complete: false, skipped: history.reason };
  }
  for (const problem of history.problems) report.fail(`${PUBLISHED_SCHEMA_FILE}: ${problem}`);
  const approvedIds = new Map(approvals.map((a) => [a.change, a.reason]));
  let bad = 0;
  for (const transition of history.transitions) {
    const unacknowledged = transition.unlisted.filter((c) => !approvedIds.has(c.id));
    for (const change of transition.unlisted) {
      if (!approvedIds.has(change.id)) continue;
      acknowledged.add(change.id);
      report.info(
        `  ${PUBLISHED_SCHEMA_FILE} ${transition.label}: ${change.id} acknowledged [approved: ${approvedIds.get(change.id)}]`,
      );
    }
    if (unacknowledged.length === 0) continue;
    bad++;
    report.fail(
      `${PUBLISHED_SCHEMA_FILE} was changed ${transition.label} with breaking change(s) it does not list as ` +
        `approved, so it was not written by pnpm schema:publish:\n` +
        unacknowledged.map((c) => `    ${c.id}: ${c.message}`).join('\n') +
        '\n  Publish with pnpm schema:publish instead (rewriting the commit while it is not on main), or, once it ' +
        `is on main, acknowledge it in ${APPROVALS_FILE} by adding under \`approved:\`\n` +
        unacknowledged.map(approvalSnippet).join('\n'),
    );
  }
  if (bad === 0 && history.problems.length === 0) {
    const count = history.transitions.length;
    report.pass(
      count === 0
        ? `${PUBLISHED_SCHEMA_FILE} has no earlier version to verify against`
        : `${count} change(s) of ${PUBLISHED_SCHEMA_FILE} verified: each lists its breaking changes as approved`,
    );
  }
  return { acknowledged, complete: history.problems.length === 0, skipped: undefined };
}

function reportStaleApprovals(
  approvals: readonly Approval[],
  pending: ReadonlySet<string>,
  report: Report,
): void {
  const stale = [...new Set(approvals.map((a) => a.change).filter((id) => !pending.has(id)))];
  if (stale.length === 0) return;
  report.warn(
    `${stale.length} approval(s) in ${APPROVALS_FILE} match no pending change (pnpm schema:publish removes them): ` +
      stale.join(', '),
  );
}

// ---------------------------------------------------------------------------------------------------------
// (e) Operations

export function checkOperationsStep(
  root: string,
  config: SupergraphConfig,
  api: GraphQLSchema,
  report: Report,
): OperationCheckOutcome {
  const outcome = checkOperations(root, findOperationFiles(root, config), api);
  if (outcome.files.length === 0) {
    report.info('- no operation files (operations/ or subgraphs/*/operations/)');
    return outcome;
  }
  const counted = `${outcome.operations.length} operation(s) in ${outcome.files.length} file(s)`;
  if (outcome.problems.length === 0) {
    report.pass(`${counted} validate against the new API schema`);
    return outcome;
  }
  report.fail(
    `${outcome.problems.length} problem(s) in ${counted} against the new API schema:\n` +
      outcome.problems.map((p) => `  - ${formatOperationProblem(p)}`).join('\n'),
  );
  return outcome;
}

// ---------------------------------------------------------------------------------------------------------
// (f) Rover cross-check

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
