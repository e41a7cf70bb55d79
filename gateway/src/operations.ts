import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { findOperationFiles, operationOwnerOf, relativePath } from '@aiva/shared';
import { Kind, type OperationDefinitionNode, parse } from 'graphql';

/** The repository root, where `operations/` and `subgraphs/<name>/operations/` are. */
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** One named operation of an `operations/` folder, as clients send it. */
export interface StoredOperation {
  /** The operation's name (`query Users(...)` → `Users`). */
  name: string;
  kind: 'query' | 'mutation' | 'subscription';
  /** The file's text as it is: the exact string a client of this file sends (the plan cache's key). */
  document: string;
  /** The leading `#` comment lines of the file, without the `#`. */
  description: string;
  /** Where it came from, relative to the repository root (`subgraphs/users/operations/users.graphql`). */
  file: string;
  /** The service whose folder holds it (`users`), or `supergraph` for the root `operations/`. */
  owner: string;
}

/**
 * Reads the `.graphql` files of the `operations/` folders (sorted by path). A file holds one named operation;
 * one that does not parse, or holds none or several, is reported in `problems` and left out.
 */
export function loadOperations(root: string = REPO_ROOT): {
  operations: StoredOperation[];
  problems: string[];
} {
  const operations: StoredOperation[] = [];
  const problems: string[] = [];
  for (const path of findOperationFiles(root)) {
    const file = relativePath(root, path);
    const owner = operationOwnerOf(root, path);
    const document = readFileSync(path, 'utf8');
    try {
      const definitions = parse(document).definitions.filter(
        (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
      );
      const [only] = definitions;
      if (definitions.length !== 1 || !only?.name) {
        problems.push(`${file}: holds ${definitions.length} operations; one named operation expected`);
        continue;
      }
      operations.push({
        name: only.name.value,
        kind: only.operation as StoredOperation['kind'],
        document,
        description: leadingComment(document),
        file,
        owner,
      });
    } catch (error) {
      problems.push(`${file}: ${(error as Error).message}`);
    }
  }
  return { operations, problems };
}

/** The `#` lines at the top of a document, joined with spaces. */
function leadingComment(document: string): string {
  const lines: string[] = [];
  for (const line of document.split('\n')) {
    const trimmed = line.trim();
    if (!trimmed.startsWith('#')) break;
    lines.push(trimmed.replace(/^#\s?/, ''));
  }
  return lines.join(' ').trim();
}
