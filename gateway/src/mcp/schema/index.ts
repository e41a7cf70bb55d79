// The transport-free core of the MCP server: pure functions over the API schema that the server exposes as
// tools (search, introspect, validate, one tool per stored operation).
export { apiSchemaOf } from './api-schema.js';
export { graphqlJs } from './graphql-js.js';
export {
  closeNames,
  type IntrospectionFound,
  type IntrospectionMissing,
  introspectType,
  MAX_INTROSPECTION_DEPTH,
} from './introspect.js';
export type { JsonSchema, JsonType } from './json-schema.js';
export {
  BUILT_IN_TOOL_NAMES,
  dataSchema,
  type OperationTool,
  operationTools,
  type ToolAnnotations,
  toolName,
  variablesSchema,
} from './operation-tools.js';
export {
  type EntryKind,
  type IndexEntry,
  indexSchema,
  type SchemaIndex,
  tokenize,
  visibleTypes,
} from './schema-index.js';
export { firstSentence, printTypeCompact } from './sdl.js';
export { renderSearchAnswer, type SchemaHit, type SearchOptions, searchSchema } from './search-schema.js';
export { type SourceLocation, type ValidationOutcome, validateOperation } from './validate.js';
