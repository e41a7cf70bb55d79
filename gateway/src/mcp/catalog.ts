import type { GraphQLSchema } from 'graphql';
import type { StoredOperation } from '../operations.js';
import {
  apiSchemaOf,
  BUILT_IN_TOOL_NAMES,
  graphqlJs,
  indexSchema,
  type OperationTool,
  operationTools,
  type SchemaIndex,
} from './schema/index.js';

/** Which mutations MCP callers may run: none, only the stored operations' (`explicit`), or any (`all`). */
export type MutationPolicy = 'none' | 'explicit' | 'all';

/** What the MCP server offers for one supergraph: built once per supergraph, shared by every request. */
export interface McpCatalog {
  /** The supergraph it was built for: the catalog changes when it does. */
  readonly supergraphSdl: string;
  /** The API schema clients see (what `/graphql` serves). */
  readonly schema: GraphQLSchema;
  /** Its SDL (the `supergraph://schema` resource). */
  readonly sdl: string;
  readonly index: SchemaIndex;
  /** The tools of the stored operations this policy lists (mutations only under `explicit` and `all`). */
  readonly operations: OperationTool[];
  /** Stored operations the schema no longer accepts, named (logged once per supergraph). */
  readonly problems: string[];
}

/**
 * The catalog of a supergraph, remembered for the last one asked for: the MCP server asks for it on every request
 * and it is rebuilt only when the gateway serves another supergraph.
 */
export function mcpCatalogs(stored: readonly StoredOperation[], policy: MutationPolicy) {
  let last: McpCatalog | undefined;
  return (supergraphSdl: string): McpCatalog => {
    // Asked for on every request: the same string as last time (usually the same object) is the same catalog.
    if (last?.supergraphSdl === supergraphSdl) return last;
    const schema = apiSchemaOf(supergraphSdl);
    const { tools, problems } = operationTools(schema, stored, { reservedNames: BUILT_IN_TOOL_NAMES });
    last = {
      supergraphSdl,
      schema,
      sdl: graphqlJs.printSchema(schema),
      index: indexSchema(schema),
      operations: tools.filter((tool) => tool.kind === 'query' || policy !== 'none'),
      problems,
    };
    return last;
  };
}
