import { ConfigError, env } from '@aiva/shared';
import { z } from 'zod';
import { CAPABILITY_VARIABLES, type Capability } from './errors.js';

/** The provider packages the layer drives. The local OpenAI-compatible server is `openai-compatible`. */
export type ProviderKind =
  | 'openai'
  | 'google'
  | 'huggingface'
  | 'togetherai'
  | 'elevenlabs'
  | 'openai-compatible';

/** What each provider package can do here (what its AI SDK package offers and the layer has a test for). */
export const PROVIDER_CAPABILITIES: Record<ProviderKind, readonly Capability[]> = {
  openai: ['chat', 'embedding', 'image', 'transcription', 'speech'],
  google: ['chat', 'embedding'],
  huggingface: ['chat'],
  togetherai: ['chat', 'embedding', 'image'],
  elevenlabs: ['speech'],
  'openai-compatible': ['chat', 'embedding', 'image'],
};

/** The variable holding each hosted provider's key (the local server's is optional). */
const KEY_VARIABLES: Record<Exclude<ProviderKind, 'openai-compatible'>, string> = {
  openai: 'OPENAI_API_KEY',
  google: 'GOOGLE_GENERATIVE_AI_API_KEY',
  huggingface: 'HUGGINGFACE_API_KEY',
  togetherai: 'TOGETHER_AI_API_KEY',
  elevenlabs: 'ELEVENLABS_API_KEY',
};

const httpUrl = () => env.url(['http', 'https']);
const timeMs = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/**
 * The AI providers' variables, to merge into the service's env schema (`.extend(aiProviderEnvSchema.shape)`),
 * with `checkAiProviderEnv` in its `superRefine` so a candidate without a key stops the start naming the
 * variable (`providerRegistryOf` checks the same again, for a schema that forgot it).
 *
 * Base URLs are for proxies and tests; unset, each package's public endpoint is used.
 */
export const aiProviderEnvSchema = z.object({
  OPENAI_API_KEY: z.string().optional(),
  /** With its `/v1`, e.g. `https://api.openai.com/v1`. */
  OPENAI_BASE_URL: httpUrl().optional(),
  GOOGLE_GENERATIVE_AI_API_KEY: z.string().optional(),
  /** With its version, e.g. `https://generativelanguage.googleapis.com/v1beta`. */
  GOOGLE_BASE_URL: httpUrl().optional(),
  HUGGINGFACE_API_KEY: z.string().optional(),
  /** Hugging Face's inference router, e.g. `https://router.huggingface.co/v1`. */
  HUGGINGFACE_BASE_URL: httpUrl().optional(),
  TOGETHER_AI_API_KEY: z.string().optional(),
  /** e.g. `https://api.together.xyz/v1`. */
  TOGETHER_AI_BASE_URL: httpUrl().optional(),
  ELEVENLABS_API_KEY: z.string().optional(),
  /** Without `/v1`, e.g. `https://api.elevenlabs.io` (the package has no setting for it: requests are rewritten). */
  ELEVENLABS_BASE_URL: httpUrl().optional(),
  /**
   * A local OpenAI-compatible server (Ollama `http://localhost:11434/v1`, LM Studio `http://localhost:1234/v1`,
   * vLLM, llama.cpp). Its models are named in AI_*_MODELS as `<OPENAI_COMPATIBLE_NAME>:<model>`; there are no
   * defaults for it, since the models it serves are whatever was pulled.
   */
  OPENAI_COMPATIBLE_BASE_URL: httpUrl().optional(),
  OPENAI_COMPATIBLE_API_KEY: z.string().optional(),
  /** The local server's provider name in AI_*_MODELS and in results (e.g. `ollama`). */
  OPENAI_COMPATIBLE_NAME: z
    .string()
    .regex(/^[a-z][a-z0-9-]*$/, 'must be lowercase letters, digits and dashes')
    .default('local'),
  /**
   * Ordered `provider:model` candidates per capability, comma-separated: the first is used, the next ones when
   * it fails (see policy.ts). Unset: defaults from the keys that are set (see DEFAULT_MODELS). `none`: the
   * capability is off whatever keys are set (for embeddings: the local embedder).
   */
  AI_CHAT_MODELS: z.string().optional(),
  /**
   * Embedding candidates. Vectors of different models are not comparable: list a second model only if the
   * caller stores vectors per model (results name the model that made them). The default is one model.
   */
  AI_EMBEDDING_MODELS: z.string().optional(),
  AI_IMAGE_MODELS: z.string().optional(),
  AI_TRANSCRIPTION_MODELS: z.string().optional(),
  AI_SPEECH_MODELS: z.string().optional(),
  /** Deadline of one attempt (of a stream: until its first token, then between tokens), in ms. */
  AI_CALL_TIMEOUT_MS: timeMs(60_000),
  /** Retries of one candidate after 429, 5xx or network errors, before the next candidate is tried. */
  AI_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  /** Time one candidate may take with its retries; a retry (or Retry-After) that would pass it is skipped. */
  AI_RETRY_BUDGET_MS: timeMs(20_000),
});
export type AiProviderEnv = z.infer<typeof aiProviderEnvSchema>;

/**
 * The models used when a capability's variable is unset, per provider whose key is set, in this order
 * (chat falls back through all of them; embeddings use only the first, see AI_EMBEDDING_MODELS).
 */
export const DEFAULT_MODELS: Record<Capability, ReadonlyArray<readonly [ProviderKind, string]>> = {
  chat: [
    ['openai', 'gpt-4o-mini'],
    ['google', 'gemini-2.0-flash'],
    ['togetherai', 'meta-llama/Llama-3.3-70B-Instruct-Turbo'],
    ['huggingface', 'meta-llama/Llama-3.1-8B-Instruct'],
  ],
  embedding: [
    ['openai', 'text-embedding-3-small'],
    ['google', 'gemini-embedding-001'],
    ['togetherai', 'BAAI/bge-base-en-v1.5'],
  ],
  image: [
    ['openai', 'gpt-image-1'],
    ['togetherai', 'black-forest-labs/FLUX.1-schnell'],
  ],
  transcription: [['openai', 'whisper-1']],
  speech: [
    ['openai', 'gpt-4o-mini-tts'],
    ['elevenlabs', 'eleven_flash_v2_5'],
  ],
};

/** How to reach one provider. */
export interface ProviderSettings {
  /** The name in candidates and results: the kind, or OPENAI_COMPATIBLE_NAME for the local server. */
  name: string;
  kind: ProviderKind;
  apiKey?: string;
  /** Unset: the package's public endpoint. */
  baseURL?: string;
}

/** One `provider:model` candidate of a capability. */
export interface Candidate {
  provider: string;
  kind: ProviderKind;
  model: string;
}

/** The retry and timeout settings of every call (see policy.ts). */
export interface CallPolicySettings {
  timeoutMs: number;
  maxRetries: number;
  budgetMs: number;
}

/** Everything the model layer needs: reachable providers, candidates per capability, the call policy. */
export interface ProviderRegistry {
  providers: Record<string, ProviderSettings>;
  candidates: Record<Capability, Candidate[]>;
  policy: CallPolicySettings;
}

/** The providers that can be reached: those with a key (or, for the local server, a base URL). */
function providersOf(config: AiProviderEnv): Record<string, ProviderSettings> {
  const hosted: Array<[Exclude<ProviderKind, 'openai-compatible'>, string | undefined, string | undefined]> =
    [
      ['openai', config.OPENAI_API_KEY, config.OPENAI_BASE_URL],
      ['google', config.GOOGLE_GENERATIVE_AI_API_KEY, config.GOOGLE_BASE_URL],
      ['huggingface', config.HUGGINGFACE_API_KEY, config.HUGGINGFACE_BASE_URL],
      ['togetherai', config.TOGETHER_AI_API_KEY, config.TOGETHER_AI_BASE_URL],
      ['elevenlabs', config.ELEVENLABS_API_KEY, config.ELEVENLABS_BASE_URL],
    ];
  const providers: Record<string, ProviderSettings> = {};
  for (const [kind, apiKey, baseURL] of hosted) {
    if (apiKey) providers[kind] = { name: kind, kind, apiKey, ...(baseURL ? { baseURL } : {}) };
  }
  if (config.OPENAI_COMPATIBLE_BASE_URL) {
    const name = config.OPENAI_COMPATIBLE_NAME;
    providers[name] = {
      name,
      kind: 'openai-compatible',
      baseURL: config.OPENAI_COMPATIBLE_BASE_URL,
      ...(config.OPENAI_COMPATIBLE_API_KEY ? { apiKey: config.OPENAI_COMPATIBLE_API_KEY } : {}),
    };
  }
  return providers;
}

/** The provider kind a candidate's provider name means (the local server goes by OPENAI_COMPATIBLE_NAME). */
function kindOfName(name: string, config: AiProviderEnv): ProviderKind | undefined {
  if (name === config.OPENAI_COMPATIBLE_NAME || name === 'openai-compatible') return 'openai-compatible';
  return name in KEY_VARIABLES ? (name as ProviderKind) : undefined;
}

/** What must be set for a provider to be reachable, for messages. */
function requirementOf(kind: ProviderKind): string {
  return kind === 'openai-compatible' ? 'OPENAI_COMPATIBLE_BASE_URL' : KEY_VARIABLES[kind];
}

interface ParsedCandidates {
  candidates: Candidate[];
  problems: string[];
}

/**
 * Parses one AI_*_MODELS value. The model is everything after the first `:` (Ollama tags like
 * `llama3.2:3b` keep theirs). Each candidate must name a known provider that is reachable and serves the
 * capability; every problem is reported, naming the variable.
 */
function parseCandidates(
  capability: Capability,
  value: string,
  config: AiProviderEnv,
  providers: Record<string, ProviderSettings>,
): ParsedCandidates {
  const variable = CAPABILITY_VARIABLES[capability];
  const candidates: Candidate[] = [];
  const problems: string[] = [];
  for (const entry of value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)) {
    const colon = entry.indexOf(':');
    const name = colon > 0 ? entry.slice(0, colon) : '';
    const model = colon > 0 ? entry.slice(colon + 1).trim() : '';
    if (!name || !model) {
      problems.push(`${variable}: "${entry}" must be provider:model (e.g. openai:gpt-4o-mini)`);
      continue;
    }
    const kind = kindOfName(name, config);
    if (!kind) {
      const known = [...Object.keys(KEY_VARIABLES), config.OPENAI_COMPATIBLE_NAME].join(', ');
      problems.push(`${variable}: unknown provider "${name}" (known: ${known})`);
      continue;
    }
    if (!PROVIDER_CAPABILITIES[kind].includes(capability)) {
      problems.push(`${variable}: ${name} does not serve ${capability} models`);
      continue;
    }
    const providerName = kind === 'openai-compatible' ? config.OPENAI_COMPATIBLE_NAME : kind;
    if (!providers[providerName]) {
      problems.push(`${variable}: ${name}:${model} needs ${requirementOf(kind)}, which is not set`);
      continue;
    }
    candidates.push({ provider: providerName, kind, model });
  }
  return { candidates, problems };
}

/** The default candidates of a capability from the reachable hosted providers (see DEFAULT_MODELS). */
function defaultCandidates(capability: Capability, providers: Record<string, ProviderSettings>): Candidate[] {
  const candidates = DEFAULT_MODELS[capability]
    .filter(([kind]) => providers[kind] !== undefined)
    .map(([kind, model]) => ({ provider: kind, kind, model }));
  return capability === 'embedding' ? candidates.slice(0, 1) : candidates;
}

const CAPABILITIES = Object.keys(CAPABILITY_VARIABLES) as Capability[];

/** The AI_*_MODELS value that turns a capability off. */
const NONE = 'none';

/** The AI_*_MODELS value of a capability. */
function modelsVariable(config: AiProviderEnv, capability: Capability): string | undefined {
  const values: Record<Capability, string | undefined> = {
    chat: config.AI_CHAT_MODELS,
    embedding: config.AI_EMBEDDING_MODELS,
    image: config.AI_IMAGE_MODELS,
    transcription: config.AI_TRANSCRIPTION_MODELS,
    speech: config.AI_SPEECH_MODELS,
  };
  return values[capability];
}

/** The registry and every configuration problem found building it. */
function buildRegistry(config: AiProviderEnv): { registry: ProviderRegistry; problems: string[] } {
  const providers = providersOf(config);
  const problems: string[] = [];
  if (config.OPENAI_COMPATIBLE_NAME in KEY_VARIABLES) {
    problems.push(
      `OPENAI_COMPATIBLE_NAME: "${config.OPENAI_COMPATIBLE_NAME}" is a hosted provider's name; choose another (e.g. ollama)`,
    );
  }
  const candidates = {} as Record<Capability, Candidate[]>;
  for (const capability of CAPABILITIES) {
    const value = modelsVariable(config, capability);
    if (value === undefined || value.trim() === '') {
      candidates[capability] = defaultCandidates(capability, providers);
      continue;
    }
    if (value.trim().toLowerCase() === NONE) {
      candidates[capability] = [];
      continue;
    }
    const parsed = parseCandidates(capability, value, config, providers);
    candidates[capability] = parsed.candidates;
    problems.push(...parsed.problems);
  }
  const policy = {
    timeoutMs: config.AI_CALL_TIMEOUT_MS,
    maxRetries: config.AI_MAX_RETRIES,
    budgetMs: config.AI_RETRY_BUDGET_MS,
  };
  return { registry: { providers, candidates, policy }, problems };
}

/**
 * For the service schema's `superRefine`: reports each unusable candidate on its AI_*_MODELS variable (and a
 * local server named like a hosted provider on OPENAI_COMPATIBLE_NAME), so `loadConfig` names it at start.
 */
export function checkAiProviderEnv(config: AiProviderEnv, ctx: z.RefinementCtx): void {
  for (const problem of buildRegistry(config).problems) {
    const variable = problem.slice(0, problem.indexOf(':'));
    ctx.addIssue({ code: 'custom', path: [variable], message: problem.slice(variable.length + 2) });
  }
}

/**
 * The providers, candidates and call policy of a parsed environment. Throws ConfigError (naming the variable,
 * never a key) when a listed candidate cannot be used: unknown provider, no key, or a capability the provider
 * lacks. A capability with no candidates is not an error here: using it throws NotConfiguredError.
 */
export function providerRegistryOf(config: AiProviderEnv): ProviderRegistry {
  const { registry, problems } = buildRegistry(config);
  if (problems.length > 0) throw new ConfigError(problems);
  return registry;
}

/** The secrets of a registry, so error texts can be cleaned of them. */
export function secretsOf(registry: ProviderRegistry): string[] {
  return Object.values(registry.providers).flatMap((p) => (p.apiKey ? [p.apiKey] : []));
}
