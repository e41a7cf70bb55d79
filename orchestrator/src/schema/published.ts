import type { GraphQLSchema } from 'graphql';
import { z } from 'zod';
import type { Approval } from './breaking.js';
import { apiSchemaOf } from './compose.js';
import { graphqlJs } from './graphql-js.js';

const { buildSchema, printSchema } = graphqlJs;

/**
 * The last published client-facing API schema: the baseline `pnpm schema:check` diffs against, written only by
 * `pnpm schema:publish`. It lives next to the approvals because both are CI gate state, reviewed together.
 *
 * It holds the API schema (what clients can query), not the supergraph: routing URLs and join/link machinery
 * are not part of the contract with clients. A header of `#` comments records the breaking changes this
 * version accepted against the one before it (`# approved: {"change":…,"reason":…}`); the check verifies every
 * committed version of the file against its predecessor with those lines.
 */
export const PUBLISHED_SCHEMA_FILE = '.ci/published-schema.graphql';

export interface PublishedSchema {
  /** The API schema SDL, without the header. */
  sdl: string;
  /** The breaking changes this version accepted against the previous one. */
  approved: Approval[];
  schema: GraphQLSchema;
}

/** Thrown when a version of the published schema file is unusable. */
export class PublishedSchemaError extends Error {
  constructor(label: string, problem: string) {
    super(`${PUBLISHED_SCHEMA_FILE} ${label} is not a valid published schema: ${problem}`);
    this.name = 'PublishedSchemaError';
  }
}

const HEADER = [
  '# The published client-facing API schema of the supergraph: the baseline of `pnpm schema:check`.',
  '# Written only by `pnpm schema:publish`; do not edit by hand. The check fails on breaking changes against',
  '# it unless they are approved in .ci/schema-approvals.yaml, and it verifies every committed version of this',
  '# file against the previous one: each breaking change between two versions must be one of the `approved:`',
  '# lines of the newer version, which schema:publish copies from the approvals it used.',
];

const APPROVED_PREFIX = '# approved: ';

const approvalLineSchema = z.object({
  change: z.string().min(1),
  reason: z.string().trim().min(1),
});

/** The API schema SDL of a supergraph, as the published schema file stores it. */
export function printApiSchema(supergraphSdl: string): string {
  return printApiSchemaOf(apiSchemaOf(supergraphSdl));
}

export function printApiSchemaOf(api: GraphQLSchema): string {
  return `${printSchema(api).trimEnd()}\n`;
}

/** The whole file: header, one line per approved breaking change, the SDL. */
export function renderPublishedSchema(apiSdl: string, approved: readonly Approval[]): string {
  const approvals =
    approved.length === 0
      ? ['# approved: none (no breaking change against the previous version)']
      : approved.map((a) => `${APPROVED_PREFIX}${JSON.stringify({ change: a.change, reason: a.reason })}`);
  return `${[...HEADER, '#', ...approvals].join('\n')}\n\n${apiSdl.trimEnd()}\n`;
}

/** Parses one version of the file. `label` says which (e.g. `in the working tree`, `at 1a2b3c4d`). */
export function parsePublishedSchema(text: string, label: string): PublishedSchema {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  let bodyStart = 0;
  const approved: Approval[] = [];
  for (; bodyStart < lines.length; bodyStart++) {
    const line = lines[bodyStart]!;
    if (line.trim() === '') continue;
    if (!line.startsWith('#')) break;
    if (!line.startsWith(APPROVED_PREFIX) || line.startsWith(`${APPROVED_PREFIX}none`)) continue;
    approved.push(parseApprovalLine(line.slice(APPROVED_PREFIX.length), bodyStart + 1, label));
  }
  const sdl = lines.slice(bodyStart).join('\n');
  if (sdl.trim() === '') throw new PublishedSchemaError(label, 'it has no schema');
  let schema: GraphQLSchema;
  try {
    schema = buildSchema(sdl);
  } catch (error) {
    throw new PublishedSchemaError(label, error instanceof Error ? error.message : String(error));
  }
  return { sdl: `${sdl.trimEnd()}\n`, approved, schema };
}

function parseApprovalLine(json: string, lineNumber: number, label: string): Approval {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    value = undefined;
  }
  const result = approvalLineSchema.safeParse(value);
  if (!result.success) {
    throw new PublishedSchemaError(
      label,
      `line ${lineNumber} must be # approved: {"change":"<change id>","reason":"<why>"}`,
    );
  }
  return result.data;
}
