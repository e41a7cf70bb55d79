import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { type Change, CriticalityLevel, diff } from '@graphql-inspector/core';
import type { GraphQLSchema } from 'graphql';
import { isMap, isSeq, parseDocument, parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { apiSchemaOf } from './compose.js';

export type ChangeCriticality = 'BREAKING' | 'DANGEROUS' | 'NON_BREAKING';

export interface SchemaChange {
  /** Stable across runs: `${type}:${path}` (e.g. `FIELD_REMOVED:User.email`). Used in the approvals file. */
  id: string;
  criticality: ChangeCriticality;
  message: string;
  /** graphql-inspector's explanation of why the change is (not) breaking, when it gives one. */
  reason: string | undefined;
}

export interface Approval {
  change: string;
  reason: string;
}

/** Where approvals of intended breaking changes live, relative to the repository root. */
export const APPROVALS_FILE = '.ci/schema-approvals.yaml';

/**
 * Diffs the client-facing API schemas of two supergraphs (so join/link internals never count as changes).
 * Changes come back sorted by criticality (BREAKING first), then id.
 */
export async function findSchemaChanges(
  oldSupergraphSdl: string,
  newSupergraphSdl: string,
): Promise<SchemaChange[]> {
  return diffApiSchemas(apiSchemaOf(oldSupergraphSdl), apiSchemaOf(newSupergraphSdl));
}

/** The changes between two client-facing API schemas, BREAKING first, then by id. */
export async function diffApiSchemas(oldApi: GraphQLSchema, newApi: GraphQLSchema): Promise<SchemaChange[]> {
  const changes = await diff(oldApi, newApi);
  return changes.map(toSchemaChange).sort(compareChanges);
}

/** The stable id of a graphql-inspector change. */
export function changeId(change: Pick<Change, 'type' | 'path'>): string {
  return change.path ? `${change.type}:${change.path}` : String(change.type);
}

/** Breaking changes whose id is not in the approvals list. */
export function unapprovedBreaking(
  changes: readonly SchemaChange[],
  approvals: readonly Approval[],
): SchemaChange[] {
  const approved = new Set(approvals.map((a) => a.change));
  return changes.filter((c) => c.criticality === 'BREAKING' && !approved.has(c.id));
}

/** The approval entry (YAML list item) that allows a breaking change, ready to paste under `approved:`. */
export function approvalSnippet(change: SchemaChange): string {
  return `  - change: ${JSON.stringify(change.id)}\n    reason: "<why this break is safe for clients>"`;
}

const approvalsFileSchema = z.object({
  approved: z
    .array(
      z.object({
        change: z.string().min(1, 'must be a change id such as FIELD_REMOVED:User.email'),
        reason: z.string().trim().min(1, 'must say why the breaking change is acceptable'),
      }),
    )
    .nullish()
    .transform((list) => list ?? []),
});

/** Thrown when the approvals file exists but is malformed. */
export class ApprovalsFileError extends Error {
  constructor(file: string, problems: string[]) {
    super(`Invalid approvals file ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ApprovalsFileError';
  }
}

/** Reads the approvals file; a missing file means nothing is approved. */
export function loadApprovals(file: string): Approval[] {
  if (!existsSync(file)) return [];
  let document: unknown;
  try {
    document = parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ApprovalsFileError(file, [
      `not valid YAML: ${error instanceof Error ? error.message : String(error)}`,
    ]);
  }
  const result = approvalsFileSchema.safeParse(document ?? {});
  if (result.success) return result.data.approved;
  throw new ApprovalsFileError(
    file,
    result.error.issues.map(
      (issue) => `${issue.path.map(String).join('.') || '(top level)'}: ${issue.message}`,
    ),
  );
}

/**
 * Removes the entries whose `change` is in `ids` from the approvals file, keeping its comments and the other
 * entries as written. Returns the removed entries' ids (each once). A missing file is left alone.
 */
export function pruneApprovals(file: string, ids: ReadonlySet<string>): string[] {
  if (ids.size === 0 || !existsSync(file)) return [];
  const document = parseDocument(readFileSync(file, 'utf8'));
  const list = document.get('approved');
  if (!isSeq(list)) return [];
  const removed = new Set<string>();
  list.items = list.items.filter((item) => {
    const change = isMap(item) ? item.get('change') : undefined;
    if (typeof change !== 'string' || !ids.has(change)) return true;
    removed.add(change);
    return false;
  });
  if (removed.size === 0) return [];
  if (list.items.length === 0) list.flow = true;
  writeFileSync(file, document.toString());
  return [...removed];
}

function toSchemaChange(change: Change): SchemaChange {
  return {
    id: changeId(change),
    criticality: criticalityOf(change.criticality.level),
    message: change.message,
    reason: change.criticality.reason,
  };
}

function criticalityOf(level: CriticalityLevel): ChangeCriticality {
  switch (level) {
    case CriticalityLevel.Breaking:
      return 'BREAKING';
    case CriticalityLevel.Dangerous:
      return 'DANGEROUS';
    default:
      return 'NON_BREAKING';
  }
}

const CRITICALITY_ORDER: Record<ChangeCriticality, number> = { BREAKING: 0, DANGEROUS: 1, NON_BREAKING: 2 };

function compareChanges(a: SchemaChange, b: SchemaChange): number {
  const byLevel = CRITICALITY_ORDER[a.criticality] - CRITICALITY_ORDER[b.criticality];
  if (byLevel !== 0) return byLevel;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
