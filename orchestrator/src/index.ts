// Schema pipeline: supergraph.yaml → composed supergraph.graphql, and the CI schema gate.
export {
  APPROVALS_FILE,
  type Approval,
  type ChangeCriticality,
  findSchemaChanges,
  loadApprovals,
  type SchemaChange,
} from './schema/breaking.js';
export {
  runSchemaCheck,
  type SchemaCheckOptions,
  type SchemaCheckResult,
  SUPERGRAPH_ARTIFACT,
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
