/**
 * The AI provider layer: configuration (keys, base URLs, `provider:model` candidates per capability), the
 * retry / timeout / fallback policy, and the model operations the AI subgraph calls.
 */
export { type Fetch, type ProviderClients, providerClientsOf, rebasedFetch } from './clients.js';
export {
  type AiProviderEnv,
  aiProviderEnvSchema,
  type CallPolicySettings,
  type Candidate,
  checkAiProviderEnv,
  DEFAULT_MODELS,
  PROVIDER_CAPABILITIES,
  type ProviderKind,
  type ProviderRegistry,
  type ProviderSettings,
  providerRegistryOf,
  secretsOf,
} from './config.js';
export {
  CAPABILITY_VARIABLES,
  type Capability,
  NotConfiguredError,
  ProviderError,
  type ProviderErrorKind,
  type ProviderFailure,
  safeDetail,
} from './errors.js';
export {
  type AiModels,
  type AiModelsOptions,
  type ChatInput,
  type ChatResult,
  type ChatStream,
  type ChatUsage,
  type ConfiguredModels,
  createAiModels,
  type Embeddings,
  type GeneratedMedia,
  type Transcript,
} from './models.js';
export {
  type AttemptEvent,
  type AttemptOutcome,
  type PolicyCandidate,
  type PolicyOptions,
  retryAfterOf,
  toProviderError,
  withPolicy,
} from './policy.js';
