import { spawnSync } from 'node:child_process';

/** Read-only git plumbing for the schema gate: no network, no writes, never throws. */

export type GitResult = { ok: true; stdout: string } | { ok: false; stderr: string; notInstalled: boolean };

export function git(cwd: string, args: string[]): GitResult {
  const result = spawnSync('git', args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.error) {
    const notInstalled = (result.error as NodeJS.ErrnoException).code === 'ENOENT';
    return { ok: false, stderr: result.error.message, notInstalled };
  }
  if (result.status !== 0) return { ok: false, stderr: result.stderr.trim(), notInstalled: false };
  return { ok: true, stdout: result.stdout };
}

/** Why `root` cannot be read with git, or undefined when it is inside a work tree. */
export function notAGitRepository(root: string): string | undefined {
  const inRepo = git(root, ['rev-parse', '--is-inside-work-tree']);
  if (inRepo.ok) return undefined;
  return inRepo.notInstalled ? 'git is not installed' : `${root} is not in a git repository`;
}

export function resolveCommit(root: string, ref: string): string | undefined {
  const result = git(root, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  return result.ok ? result.stdout.trim() : undefined;
}

/** A file's content at a commit, or undefined when the commit does not have it. */
export function readAtRef(root: string, sha: string, fileInRoot: string): string | undefined {
  // `./` makes the path relative to `root`, which need not be the top of the git work tree.
  const result = git(root, ['show', `${sha}:./${fileInRoot}`]);
  return result.ok ? result.stdout : undefined;
}

export interface CommitInfo {
  sha: string;
  subject: string;
  /** Parents as recorded in the commit object (present even when a shallow clone lacks them). */
  recordedParents: string[];
  /** Parents this clone actually has (none at a shallow boundary). */
  parents: string[];
}

/**
 * Every commit reachable from HEAD that changed `fileInRoot`, newest first (topological order), including
 * merges that changed it relative to each of their parents. Undefined when HEAD has no commits.
 */
export function commitsTouching(root: string, fileInRoot: string): CommitInfo[] | undefined {
  if (resolveCommit(root, 'HEAD') === undefined) return undefined;
  const log = git(root, ['log', '--topo-order', '--format=%H%x09%P%x09%s', 'HEAD', '--', `./${fileInRoot}`]);
  if (!log.ok) return undefined;
  return log.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [sha = '', parents = '', ...subject] = line.split('\t');
      return {
        sha,
        subject: subject.join('\t'),
        parents: parents.split(' ').filter((p) => p !== ''),
        recordedParents: recordedParentsOf(root, sha),
      };
    });
}

/** The parent lines of the raw commit object, which a shallow clone keeps even though it lacks those commits. */
function recordedParentsOf(root: string, sha: string): string[] {
  const raw = git(root, ['cat-file', 'commit', sha]);
  if (!raw.ok) return [];
  const header = raw.stdout.split('\n\n', 1)[0] ?? '';
  return header
    .split('\n')
    .filter((line) => line.startsWith('parent '))
    .map((line) => line.slice('parent '.length).trim());
}
