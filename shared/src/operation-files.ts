import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

// Where a project keeps its client operations: `operations/` at the repository root (operations across
// subgraphs) and `subgraphs/<name>/operations/` (each subgraph's own). The schema check validates them against
// the supergraph, the gateway warms its plan cache with them and makes MCP tools of them: one finder for all.

/** The folder name of stored operations. */
export const OPERATIONS_DIR = 'operations';

/** A path relative to `root`, with `/` separators. */
export function relativePath(root: string, file: string): string {
  return relative(root, file).split(sep).join('/');
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

function graphqlFilesUnder(directory: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) found.push(...graphqlFilesUnder(path));
    else if (entry.isFile() && entry.name.endsWith('.graphql')) found.push(path);
  }
  return found;
}

/**
 * The operation files of a project: every `.graphql` file under `<root>/operations/`, under each
 * `<root>/subgraphs/<name>/operations/`, and under `extraDirectories` (e.g. the `operations/` beside a subgraph
 * schema that lives elsewhere). Absolute paths, each file once (by its real path), sorted by relative path.
 */
export function findOperationFiles(root: string, extraDirectories: readonly string[] = []): string[] {
  const directories = new Set<string>([join(root, OPERATIONS_DIR), ...extraDirectories]);
  const subgraphsDir = join(root, 'subgraphs');
  if (isDirectory(subgraphsDir)) {
    for (const entry of readdirSync(subgraphsDir, { withFileTypes: true })) {
      if (entry.isDirectory()) directories.add(join(subgraphsDir, entry.name, OPERATIONS_DIR));
    }
  }
  const files = new Map<string, string>();
  for (const directory of directories) {
    if (!isDirectory(directory)) continue;
    for (const file of graphqlFilesUnder(directory)) files.set(realpathSync(file), file);
  }
  const byPath = (a: string, b: string) => {
    const [x, y] = [relativePath(root, a), relativePath(root, b)];
    return x < y ? -1 : x > y ? 1 : 0;
  };
  return [...files.values()].sort(byPath);
}

/** Whose operation a file is: `users` for `subgraphs/users/operations/…`, else `supergraph`. */
export function operationOwnerOf(root: string, file: string): string {
  const match = /^subgraphs\/([^/]+)\/operations\//.exec(relativePath(root, file));
  return match?.[1] ?? 'supergraph';
}
