import { diffApiSchemas, type SchemaChange } from './breaking.js';
import { type CommitInfo, commitsTouching, notAGitRepository, readAtRef } from './git.js';
import { PUBLISHED_SCHEMA_FILE, type PublishedSchema, parsePublishedSchema } from './published.js';

/**
 * Verifies the history of the published schema file: every version (each commit that changed it, and the
 * working tree when it differs from HEAD) is diffed against the version before it, and each breaking change
 * between them must be listed in the newer version's `# approved:` lines. That is what `pnpm schema:publish`
 * writes; a baseline edited by hand to hide a break (say, copied from supergraph.graphql in the same push as
 * the break) shows up here however many commits back it is.
 */

export interface PublishTransition {
  /** `in the working tree` or `in 1a2b3c4d5e (subject)`. */
  label: string;
  /** The commit that made this version, undefined for the working tree. */
  sha: string | undefined;
  /** Breaking changes against the previous version that this version does not list as approved. */
  unlisted: SchemaChange[];
}

export type HistoryOutcome =
  | { kind: 'skipped'; reason: string }
  | {
      kind: 'verified';
      /** Versions compared with their predecessor (the first version of the file has none). */
      transitions: PublishTransition[];
      /** Why some of the history could not be verified (e.g. a shallow clone). */
      problems: string[];
    };

interface Version {
  label: string;
  sha: string | undefined;
  text: string;
  /** The text of the version before it; undefined when this is the first version of the file. */
  previous: () => string | undefined | { unverifiable: string };
}

/** `workingTreeText` is the file as it is now (undefined when missing). */
export async function verifyPublishedHistory(
  root: string,
  workingTreeText: string | undefined,
): Promise<HistoryOutcome> {
  const notRepository = notAGitRepository(root);
  if (notRepository !== undefined) return { kind: 'skipped', reason: notRepository };
  const commits = commitsTouching(root, PUBLISHED_SCHEMA_FILE) ?? [];
  const texts = commits.map((c) => readAtRef(root, c.sha, PUBLISHED_SCHEMA_FILE));
  const nearestOlder = (index: number): string | undefined => texts.slice(index).find((t) => t !== undefined);

  const versions: Version[] = [];
  const headText = commits.length > 0 ? readAtRef(root, 'HEAD', PUBLISHED_SCHEMA_FILE) : undefined;
  if (workingTreeText !== undefined && normalize(workingTreeText) !== normalize(headText ?? '')) {
    versions.push({
      label: 'in the working tree',
      sha: undefined,
      text: workingTreeText,
      previous: () => headText ?? nearestOlder(0),
    });
  }
  commits.forEach((commit, index) => {
    const text = texts[index];
    if (text === undefined) return; // deleted here: the next version is compared with the one before
    versions.push({
      label: `in ${commit.sha.slice(0, 10)} (${commit.subject})`,
      sha: commit.sha,
      text,
      previous: () => previousOfCommit(root, commit, () => nearestOlder(index + 1)),
    });
  });

  const parsed = new Map<string, PublishedSchema | undefined>();
  const parse = (text: string, label: string): PublishedSchema | undefined => {
    if (!parsed.has(text)) {
      try {
        parsed.set(text, parsePublishedSchema(text, label));
      } catch {
        parsed.set(text, undefined); // unusable versions are skipped; the check reports the current one
      }
    }
    return parsed.get(text);
  };

  const transitions: PublishTransition[] = [];
  const problems: string[] = [];
  for (const version of versions) {
    const current = parse(version.text, version.label);
    if (current === undefined) continue;
    const previousText = version.previous();
    if (previousText === undefined) continue; // the first version of the file
    if (typeof previousText !== 'string') {
      problems.push(`cannot verify the version ${version.label}: ${previousText.unverifiable}`);
      continue;
    }
    const previous = parse(previousText, `before ${version.label}`);
    if (previous === undefined) continue;
    const listed = new Set(current.approved.map((a) => a.change));
    const changes = await diffApiSchemas(previous.schema, current.schema);
    transitions.push({
      label: version.label,
      sha: version.sha,
      unlisted: changes.filter((c) => c.criticality === 'BREAKING' && !listed.has(c.id)),
    });
  }
  return { kind: 'verified', transitions, problems };
}

function previousOfCommit(
  root: string,
  commit: CommitInfo,
  olderVersion: () => string | undefined,
): string | undefined | { unverifiable: string } {
  const firstParent = commit.parents[0];
  if (firstParent === undefined && commit.recordedParents.length > 0) {
    return {
      unverifiable:
        'this clone is shallow and lacks its parent; fetch the full history (git fetch --unshallow, ' +
        'or fetch-depth: 0 in CI)',
    };
  }
  const atParent =
    firstParent === undefined ? undefined : readAtRef(root, firstParent, PUBLISHED_SCHEMA_FILE);
  // No parent version: the file is new here, or re-created after a deletion (then the last version counts).
  return atParent ?? olderVersion();
}

function normalize(text: string): string {
  return text.replace(/\r\n/g, '\n');
}
