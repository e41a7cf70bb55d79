import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  APPROVALS_FILE,
  type Approval,
  approvalSnippet,
  diffApiSchemas,
  pruneApprovals,
  type SchemaChange,
  unapprovedBreaking,
} from './breaking.js';
import {
  apiSchemaForCheck,
  approvalsForCheck,
  checkArtifact,
  checkOperationsStep,
  checkPublishedHistory,
  composeForCheck,
  Report,
  SUPERGRAPH_CONFIG,
} from './check.js';
import {
  PUBLISHED_SCHEMA_FILE,
  type PublishedSchema,
  parsePublishedSchema,
  printApiSchemaOf,
  renderPublishedSchema,
} from './published.js';

export interface SchemaPublishOptions {
  /** Repository root: the directory holding supergraph.yaml and .ci/. */
  root: string;
  /** Defaults to `<root>/supergraph.yaml`. */
  configFile?: string;
}

export interface SchemaPublishResult {
  ok: boolean;
  messages: string[];
  failures: string[];
  /** Whether the published schema file was (re)written. */
  wrote: boolean;
  /** The approvals this publish used, now recorded in the published schema's header. */
  approved: Approval[];
  /** Ids removed from the approvals file (used here, or matching no pending change). */
  pruned: string[];
}

/**
 * Publishes the API schema of the composed supergraph as the new baseline of `pnpm schema:check`.
 *
 * Refuses (writing nothing) unless the supergraph composes, supergraph.graphql is current, every operation
 * validates and every breaking change against the current published schema is approved. The approvals it
 * used are written into the new version's header, where the check's history verification finds them, and
 * then removed from the approvals file together with approvals that match no pending change; approvals that
 * acknowledge a hand-edited version in the history are kept (the history check still needs them).
 */
export async function publishSchema(options: SchemaPublishOptions): Promise<SchemaPublishResult> {
  const root = resolve(options.root);
  const report = new Report();
  const result = { wrote: false, approved: [] as Approval[], pruned: [] as string[] };
  const finish = (): SchemaPublishResult => ({ ...report.finish('Schema publish'), ...result });

  const composed = composeForCheck(resolve(root, options.configFile ?? SUPERGRAPH_CONFIG), report);
  if (composed === undefined) return finish();
  checkArtifact(root, composed.supergraphSdl, report);
  const api = apiSchemaForCheck(composed.supergraphSdl, report);
  if (api === undefined) return finish();
  checkOperationsStep(root, composed.config, api, report);
  const approvals = approvalsForCheck(root, report);
  const file = join(root, PUBLISHED_SCHEMA_FILE);
  const current = readCurrent(file, report);
  if (approvals === undefined || current === 'invalid' || !report.ok) return refuse(report, finish);

  const changes = current === undefined ? [] : await diffApiSchemas(current.schema, api);
  const unapproved = unapprovedBreaking(changes, approvals);
  if (unapproved.length > 0) {
    report.fail(
      `${unapproved.length} unapproved breaking change(s) against ${PUBLISHED_SCHEMA_FILE}; approve them in ` +
        `${APPROVALS_FILE} by adding under \`approved:\`\n${unapproved.map(approvalSnippet).join('\n')}`,
    );
    return refuse(report, finish);
  }

  result.approved = approvalsUsed(changes, approvals);
  const sdl = printApiSchemaOf(api);
  if (current !== undefined && current.sdl === sdl) {
    report.pass(`${PUBLISHED_SCHEMA_FILE} already holds this API schema: nothing to publish`);
  } else {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, renderPublishedSchema(sdl, result.approved));
    result.wrote = true;
    report.pass(`published the API schema to ${PUBLISHED_SCHEMA_FILE} (${describe(changes, current)})`);
    for (const approval of result.approved) report.info(`  recorded as approved: ${approval.change}`);
  }

  // Approvals still needed: those acknowledging hand-edited versions in the history (checked after writing, so
  // the new version is part of it). Everything else is either recorded in the header now or matches nothing.
  // Without git there is no history to need them; with a history that cannot be fully read, keep them all.
  const history = await checkPublishedHistory(root, approvals, new Report());
  const historyUnread = !history.complete && history.skipped === undefined;
  if (historyUnread) {
    report.warn(
      `the history of ${PUBLISHED_SCHEMA_FILE} could not be fully verified: ${APPROVALS_FILE} left as is`,
    );
  }
  const prune = historyUnread
    ? new Set<string>()
    : new Set(approvals.map((a) => a.change).filter((id) => !history.acknowledged.has(id)));
  result.pruned = pruneApprovals(join(root, APPROVALS_FILE), prune);
  if (result.pruned.length > 0) {
    report.info(`removed from ${APPROVALS_FILE}: ${result.pruned.join(', ')}`);
  }
  if (result.wrote || result.pruned.length > 0) {
    report.info(`Commit ${PUBLISHED_SCHEMA_FILE} and ${APPROVALS_FILE} together.`);
  }
  return finish();
}

function refuse(report: Report, finish: () => SchemaPublishResult): SchemaPublishResult {
  report.info(`Nothing published: ${PUBLISHED_SCHEMA_FILE} is unchanged.`);
  return finish();
}

function readCurrent(file: string, report: Report): PublishedSchema | 'invalid' | undefined {
  if (!existsSync(file)) {
    report.warn(
      `${PUBLISHED_SCHEMA_FILE} does not exist: publishing the first version (if one existed before, ` +
        'pnpm schema:check compares this one with its last committed version)',
    );
    return undefined;
  }
  try {
    return parsePublishedSchema(readFileSync(file, 'utf8'), 'in the working tree');
  } catch (error) {
    report.fail(`${error instanceof Error ? error.message : String(error)}; restore it from git first`);
    return 'invalid';
  }
}

/** The approvals of the breaking changes being published, one per change, in change order. */
function approvalsUsed(changes: readonly SchemaChange[], approvals: readonly Approval[]): Approval[] {
  const byId = new Map(approvals.map((a) => [a.change, a]));
  return changes.flatMap((c) => {
    const approval = c.criticality === 'BREAKING' ? byId.get(c.id) : undefined;
    return approval === undefined ? [] : [approval];
  });
}

function describe(changes: readonly SchemaChange[], previous: PublishedSchema | undefined): string {
  if (previous === undefined) return 'first version';
  const breaking = changes.filter((c) => c.criticality === 'BREAKING').length;
  return `${changes.length} change(s), ${breaking} of them breaking and approved`;
}
