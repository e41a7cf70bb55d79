import { ConfigError, loadConfig } from '@aiva/shared';
import { describe, expect, it } from 'vitest';
import {
  aiProviderEnvSchema,
  checkAiProviderEnv,
  type ProviderRegistry,
  providerRegistryOf,
} from '../../src/providers/config.js';

/** The registry of an environment, parsed as the service would. */
function registryOf(env: Record<string, string>): ProviderRegistry {
  return providerRegistryOf(loadConfig(aiProviderEnvSchema, env));
}

/** `provider:model` per capability, for compact expectations. */
function idsOf(registry: ProviderRegistry): Record<string, string[]> {
  return Object.fromEntries(
    Object.entries(registry.candidates).map(([capability, list]) => [
      capability,
      list.map((c) => `${c.provider}:${c.model}`),
    ]),
  );
}

/** The problems of a configuration that does not load. */
function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('the configuration loaded');
}

describe('AI provider configuration', () => {
  it('has no candidates and the documented call policy without any variable', () => {
    const registry = registryOf({});
    expect(idsOf(registry)).toEqual({ chat: [], embedding: [], image: [], transcription: [], speech: [] });
    expect(registry.policy).toEqual({ timeoutMs: 60_000, maxRetries: 2, budgetMs: 20_000 });
  });

  it('defaults every capability OpenAI serves from its key alone', () => {
    expect(idsOf(registryOf({ OPENAI_API_KEY: 'k' }))).toEqual({
      chat: ['openai:gpt-4o-mini'],
      embedding: ['openai:text-embedding-3-small'],
      image: ['openai:gpt-image-1'],
      transcription: ['openai:whisper-1'],
      speech: ['openai:gpt-4o-mini-tts'],
    });
  });

  it('turns a capability off with none, whatever keys are set', () => {
    expect(
      idsOf(registryOf({ OPENAI_API_KEY: 'k', AI_EMBEDDING_MODELS: 'none', AI_IMAGE_MODELS: ' None ' })),
    ).toEqual({
      chat: ['openai:gpt-4o-mini'],
      embedding: [],
      image: [],
      transcription: ['openai:whisper-1'],
      speech: ['openai:gpt-4o-mini-tts'],
    });
  });

  it('chains the default chat models of every key, but keeps a single embedding model', () => {
    const registry = registryOf({
      GOOGLE_GENERATIVE_AI_API_KEY: 'g',
      TOGETHER_AI_API_KEY: 't',
      HUGGINGFACE_API_KEY: 'h',
    });
    expect(idsOf(registry)).toMatchObject({
      chat: [
        'google:gemini-2.0-flash',
        'togetherai:meta-llama/Llama-3.3-70B-Instruct-Turbo',
        'huggingface:meta-llama/Llama-3.1-8B-Instruct',
      ],
      embedding: ['google:gemini-embedding-001'],
      image: ['togetherai:black-forest-labs/FLUX.1-schnell'],
    });
  });

  it('keeps the listed order, the providers base URLs and model ids with colons', () => {
    const registry = registryOf({
      OPENAI_API_KEY: 'k',
      OPENAI_BASE_URL: 'http://proxy.local/v1',
      OPENAI_COMPATIBLE_BASE_URL: 'http://localhost:11434/v1',
      OPENAI_COMPATIBLE_NAME: 'ollama',
      AI_CHAT_MODELS: ' ollama:llama3.2:3b , openai:gpt-4o ',
    });
    expect(registry.candidates.chat).toEqual([
      { provider: 'ollama', kind: 'openai-compatible', model: 'llama3.2:3b' },
      { provider: 'openai', kind: 'openai', model: 'gpt-4o' },
    ]);
    expect(registry.providers.openai).toEqual({
      name: 'openai',
      kind: 'openai',
      apiKey: 'k',
      baseURL: 'http://proxy.local/v1',
    });
    expect(registry.providers.ollama).toEqual({
      name: 'ollama',
      kind: 'openai-compatible',
      baseURL: 'http://localhost:11434/v1',
    });
  });

  it('refuses a candidate whose provider has no key, naming the variable and the key', () => {
    expect(
      problemsOf(() =>
        registryOf({ AI_CHAT_MODELS: 'openai:gpt-4o-mini,google:gemini-2.0-flash', OPENAI_API_KEY: 'k' }),
      ),
    ).toEqual([
      'AI_CHAT_MODELS: google:gemini-2.0-flash needs GOOGLE_GENERATIVE_AI_API_KEY, which is not set',
    ]);
    expect(problemsOf(() => registryOf({ AI_EMBEDDING_MODELS: 'local:nomic-embed-text' }))).toEqual([
      'AI_EMBEDDING_MODELS: local:nomic-embed-text needs OPENAI_COMPATIBLE_BASE_URL, which is not set',
    ]);
  });

  it('refuses unknown providers, malformed entries and capabilities a provider lacks', () => {
    const problems = problemsOf(() =>
      registryOf({
        HUGGINGFACE_API_KEY: 'h',
        AI_CHAT_MODELS: 'anthropic:claude',
        AI_EMBEDDING_MODELS: 'huggingface:bge',
        AI_IMAGE_MODELS: 'gpt-image-1',
      }),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^AI_CHAT_MODELS: unknown provider "anthropic" \(known: openai, google/),
      'AI_EMBEDDING_MODELS: huggingface does not serve embedding models',
      'AI_IMAGE_MODELS: "gpt-image-1" must be provider:model (e.g. openai:gpt-4o-mini)',
    ]);
  });

  it('refuses a local server named like a hosted provider', () => {
    expect(
      problemsOf(() =>
        registryOf({
          OPENAI_COMPATIBLE_BASE_URL: 'http://localhost:1234/v1',
          OPENAI_COMPATIBLE_NAME: 'openai',
        }),
      ),
    ).toEqual([`OPENAI_COMPATIBLE_NAME: "openai" is a hosted provider's name; choose another (e.g. ollama)`]);
  });

  it('reports the problems through a service schema at start, on the variable, without any key', () => {
    const serviceSchema = aiProviderEnvSchema.superRefine(checkAiProviderEnv);
    const problems = problemsOf(() =>
      loadConfig(serviceSchema, {
        OPENAI_API_KEY: 'sk-secret-value-123',
        AI_SPEECH_MODELS: 'elevenlabs:eleven_v3',
      }),
    );
    expect(problems).toEqual([
      'AI_SPEECH_MODELS: elevenlabs:eleven_v3 needs ELEVENLABS_API_KEY, which is not set',
    ]);
    expect(problems.join()).not.toContain('sk-secret-value-123');
  });

  it('validates the policy numbers and base URLs', () => {
    const problems = problemsOf(() =>
      loadConfig(aiProviderEnvSchema, {
        AI_CALL_TIMEOUT_MS: '0',
        AI_MAX_RETRIES: '-1',
        GOOGLE_BASE_URL: 'ftp://x',
      }),
    );
    expect(problems.map((p) => p.split(':')[0])).toEqual([
      'GOOGLE_BASE_URL',
      'AI_CALL_TIMEOUT_MS',
      'AI_MAX_RETRIES',
    ]);
  });
});
