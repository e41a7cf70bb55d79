import type { DocumentNode, GraphQLSchema } from 'graphql';
import { graphqlJs } from './graphql-js.js';

const { GraphQLError, Kind, parse, validate } = graphqlJs;

/** Where an error is in the document, 1-based as GraphQL reports it. */
export interface SourceLocation {
  line: number;
  column: number;
}

/** The outcome of checking an operation document against a schema. */
export type ValidationOutcome =
  | { valid: true; operations: Array<{ name: string | null; kind: 'query' | 'mutation' | 'subscription' }> }
  | { valid: false; errors: Array<{ message: string; locations: SourceLocation[] }> };

/** Beyond this many errors a document is rewritten, not fixed: the rest are left out. */
const MAX_ERRORS = 50;

/**
 * Parses and validates a document against the schema with the spec's rules (the ones `/graphql` applies), and
 * names the operations it holds. Never throws: a syntax error, a validation error or anything unexpected comes
 * back as `{ valid: false, errors }`, each error with its locations.
 */
export function validateOperation(schema: GraphQLSchema, document: string): ValidationOutcome {
  let ast: DocumentNode;
  try {
    ast = parse(document);
  } catch (error) {
    return { valid: false, errors: [describe(error)] };
  }
  try {
    const errors = validate(schema, ast, undefined, { maxErrors: MAX_ERRORS });
    if (errors.length > 0) return { valid: false, errors: errors.map(describe) };
  } catch (error) {
    return { valid: false, errors: [describe(error)] };
  }
  const operations = ast.definitions.flatMap((definition) =>
    definition.kind === Kind.OPERATION_DEFINITION
      ? [{ name: definition.name?.value ?? null, kind: definition.operation }]
      : [],
  );
  if (operations.length === 0) {
    return { valid: false, errors: [{ message: 'The document holds no operation.', locations: [] }] };
  }
  return { valid: true, operations };
}

function describe(error: unknown): { message: string; locations: SourceLocation[] } {
  if (error instanceof GraphQLError) {
    return {
      message: error.message,
      locations: (error.locations ?? []).map(({ line, column }) => ({ line, column })),
    };
  }
  return { message: error instanceof Error ? error.message : String(error), locations: [] };
}
