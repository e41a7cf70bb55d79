// Schema pipeline: supergraph.yaml → composed supergraph.graphql, and the CI schema gate.
export {
  type Approval,
  APPROVALS_FILE,
  type ChangeCriticality,
  findSchemaChanges,
  loadApprovals,
  type SchemaChange,
} from './schema/breaking.js';
export {
  runSchemaCheck,
  SUPERGRAPH_ARTIFACT,
  type SchemaCheckOptions,
  type SchemaCheckResult,
} from './schema/check.js';
export {
  apiSchemaOf,
  type CompositionOutcome,
  composeFromConfig,
  composeSupergraph,
  type SubgraphInput,
} from './schema/compose.js';
export {
  loadSupergraphConfig,
  type SubgraphSource,
  type SupergraphConfig,
  SupergraphConfigError,
} from './schema/supergraph-config.js';
