import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { findOperationFiles as findProjectOperationFiles, OPERATIONS_DIR, relativePath } from '@aiva/shared';
import type { DefinitionNode, DocumentNode, GraphQLError, GraphQLSchema } from 'graphql';
import { graphqlJs } from './graphql-js.js';
import type { SupergraphConfig } from './supergraph-config.js';

const { Kind, parse, validate } = graphqlJs;

/**
 * Client operations checked against the supergraph, like `rover graph check` with operations: every `.graphql`
 * file under `operations/` at the repository root and under each subgraph's `operations/` folder holds one or
 * more named operations (with the fragments they use); each must validate against the new API schema.
 */
export { OPERATIONS_DIR };

export interface OperationRef {
  /** Relative to the repository root, with `/` separators. */
  file: string;
  name: string;
  kind: 'query' | 'mutation' | 'subscription';
}

export interface OperationProblem {
  file: string;
  /** `operation Users`, `fragment UserFields`, or undefined when it concerns the whole file. */
  definition: string | undefined;
  line: number | undefined;
  column: number | undefined;
  message: string;
}

export interface OperationCheckOutcome {
  files: string[];
  operations: OperationRef[];
  problems: OperationProblem[];
}

/**
 * The operation files of a project (see `findOperationFiles` in @aiva/shared), plus the `operations/` folder
 * next to each configured subgraph's schema file. Sorted, each once.
 */
export function findOperationFiles(root: string, config: SupergraphConfig | undefined): string[] {
  const besideSchemas = (config?.subgraphs ?? []).map((s) => join(dirname(s.schemaFile), OPERATIONS_DIR));
  return findProjectOperationFiles(root, besideSchemas);
}

/** Parses and validates every operation file against `schema`. Never throws. */
export function checkOperations(
  root: string,
  files: readonly string[],
  schema: GraphQLSchema,
): OperationCheckOutcome {
  const operations: OperationRef[] = [];
  const problems: OperationProblem[] = [];
  const firstFileOfName = new Map<string, string>();
  for (const absolute of files) {
    const file = relativePath(root, absolute);
    const document = parseOperationFile(file, readFileSync(absolute, 'utf8'), problems);
    if (document === undefined) continue;
    for (const definition of document.definitions) {
      if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
      const location = lineAndColumn(definition);
      if (definition.name === undefined) {
        problems.push({ file, definition: undefined, ...location, message: 'every operation must be named' });
        continue;
      }
      const name = definition.name.value;
      const earlier = firstFileOfName.get(name);
      if (earlier !== undefined && earlier !== file) {
        problems.push({
          file,
          definition: `operation ${name}`,
          ...location,
          message: `operation names must be unique across operation files; ${name} is also in ${earlier}`,
        });
      }
      firstFileOfName.set(name, earlier ?? file);
      operations.push({ file, name, kind: definition.operation });
    }
    if (!document.definitions.some((d) => d.kind === Kind.OPERATION_DEFINITION)) {
      problems.push({
        file,
        definition: undefined,
        line: undefined,
        column: undefined,
        message: 'has no operation',
      });
      continue;
    }
    for (const error of validate(schema, document)) {
      problems.push({
        file,
        definition: definitionAt(document, error),
        ...errorLocation(error),
        message: error.message,
      });
    }
  }
  return { files: files.map((f) => relativePath(root, f)), operations, problems };
}

/** `subgraphs/users/operations/users.graphql:4:5 operation Users: Cannot query field …` */
export function formatOperationProblem(problem: OperationProblem): string {
  const where =
    problem.line === undefined ? problem.file : `${problem.file}:${problem.line}:${problem.column}`;
  return `${where} ${problem.definition ?? ''}`.trimEnd().concat(`: ${problem.message}`);
}

function parseOperationFile(
  file: string,
  text: string,
  problems: OperationProblem[],
): DocumentNode | undefined {
  try {
    return parse(text);
  } catch (error) {
    const location =
      error instanceof graphqlJs.GraphQLError ? errorLocation(error) : { line: undefined, column: undefined };
    const message = error instanceof Error ? error.message : String(error);
    problems.push({ file, definition: undefined, ...location, message });
    return undefined;
  }
}

/** The operation or fragment an error is in, by the position of its first node. */
function definitionAt(document: DocumentNode, error: GraphQLError): string | undefined {
  const position = error.positions?.[0] ?? error.nodes?.[0]?.loc?.start;
  if (position === undefined) return undefined;
  const definition = document.definitions.find(
    (d) => d.loc !== undefined && d.loc.start <= position && position < d.loc.end,
  );
  return definition === undefined ? undefined : describeDefinition(definition);
}

function describeDefinition(definition: DefinitionNode): string | undefined {
  if (definition.kind === Kind.OPERATION_DEFINITION) {
    return definition.name ? `operation ${definition.name.value}` : `anonymous ${definition.operation}`;
  }
  if (definition.kind === Kind.FRAGMENT_DEFINITION) return `fragment ${definition.name.value}`;
  return undefined;
}

function errorLocation(error: GraphQLError): { line: number | undefined; column: number | undefined } {
  const location = error.locations?.[0];
  return { line: location?.line, column: location?.column };
}

function lineAndColumn(definition: DefinitionNode): { line: number | undefined; column: number | undefined } {
  const start = definition.loc?.startToken;
  return { line: start?.line, column: start?.column };
}
