// Schema pipeline: supergraph.yaml → composed supergraph.graphql, and the CI schema gate.

// The orchestrator at run time: the registry (with probes, DNS discovery, composition, status page) and the
// process supervisor; `src/main.ts` wires them for `start`, `dev` and `registry`.
export { type OrchestratorConfig, orchestratorEnvSchema } from './config.js';
export {
  createRegistryApp,
  openRegistryStore,
  type RegistryApp,
  type RegistryAppOptions,
} from './registry/index.js';
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
export {
  createSupervisor,
  loadServiceManifest,
  type Supervisor,
  type SupervisorOptions,
} from './supervisor/index.js';
