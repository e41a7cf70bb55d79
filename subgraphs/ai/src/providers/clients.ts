import { createElevenLabs } from '@ai-sdk/elevenlabs';
import { createGoogleGenerativeAI } from '@ai-sdk/google';
import { createHuggingFace } from '@ai-sdk/huggingface';
import { createOpenAI, type OpenAIProvider } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { createTogetherAI } from '@ai-sdk/togetherai';
import type { EmbeddingModel, ImageModel, LanguageModel, SpeechModel } from 'ai';
import type { Candidate, ProviderKind, ProviderRegistry, ProviderSettings } from './config.js';

/** The AI SDK's transcription model interface (v3), as every provider package here returns it. */
export type TranscriptionModelV3 = ReturnType<OpenAIProvider['transcription']>;

/** The fetch the provider packages call; tests and proxies may pass their own. */
export type Fetch = typeof globalThis.fetch;

/** The AI SDK model of a candidate, per capability. */
export interface ProviderClients {
  languageModel(candidate: Candidate): LanguageModel;
  embeddingModel(candidate: Candidate): EmbeddingModel;
  imageModel(candidate: Candidate): ImageModel;
  transcriptionModel(candidate: Candidate): TranscriptionModelV3;
  speechModel(candidate: Candidate): SpeechModel;
}

/** OpenAI's public endpoint, the package's default. */
const OPENAI_URL = 'https://api.openai.com/v1';

/** ElevenLabs' fixed endpoint: its package has no base URL setting. */
const ELEVENLABS_URL = 'https://api.elevenlabs.io';

/**
 * A fetch that sends requests for `from…` to `to…` instead. ElevenLabs' package has no base URL option, so
 * ELEVENLABS_BASE_URL (a proxy, or a test server) is honoured this way.
 */
export function rebasedFetch(from: string, to: string, inner: Fetch = globalThis.fetch): Fetch {
  const target = to.replace(/\/+$/, '');
  return (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!url.startsWith(from)) return inner(input, init);
    const rebased = `${target}${url.slice(from.length)}`;
    return inner(input instanceof Request ? new Request(rebased, input) : rebased, init);
  };
}

type Instance =
  | { kind: 'openai'; provider: ReturnType<typeof createOpenAI> }
  | { kind: 'google'; provider: ReturnType<typeof createGoogleGenerativeAI> }
  | { kind: 'huggingface'; provider: ReturnType<typeof createHuggingFace> }
  | { kind: 'togetherai'; provider: ReturnType<typeof createTogetherAI> }
  | { kind: 'elevenlabs'; provider: ReturnType<typeof createElevenLabs> }
  | { kind: 'openai-compatible'; provider: ReturnType<typeof createOpenAICompatible> };

/**
 * The provider package instance of one provider. Keys and base URLs are always passed explicitly, so the
 * packages never read OPENAI_API_KEY & co. from process.env behind the configuration's back.
 */
function instanceOf(settings: ProviderSettings, fetch: Fetch | undefined): Instance {
  const common = {
    ...(settings.apiKey ? { apiKey: settings.apiKey } : {}),
    ...(settings.baseURL ? { baseURL: settings.baseURL } : {}),
    ...(fetch ? { fetch } : {}),
  };
  switch (settings.kind) {
    case 'openai':
      // Explicit, or the package would read OPENAI_BASE_URL from process.env rather than this configuration.
      return {
        kind: 'openai',
        provider: createOpenAI({ ...common, baseURL: settings.baseURL ?? OPENAI_URL }),
      };
    case 'google':
      return { kind: 'google', provider: createGoogleGenerativeAI(common) };
    case 'huggingface':
      return { kind: 'huggingface', provider: createHuggingFace(common) };
    case 'togetherai':
      return { kind: 'togetherai', provider: createTogetherAI(common) };
    case 'elevenlabs': {
      const rebased = settings.baseURL ? rebasedFetch(ELEVENLABS_URL, settings.baseURL, fetch) : fetch;
      const options = {
        ...(settings.apiKey ? { apiKey: settings.apiKey } : {}),
        ...(rebased ? { fetch: rebased } : {}),
      };
      return { kind: 'elevenlabs', provider: createElevenLabs(options) };
    }
    case 'openai-compatible':
      return {
        kind: 'openai-compatible',
        provider: createOpenAICompatible({
          ...common,
          name: settings.name,
          baseURL: settings.baseURL ?? '',
          // Ollama, LM Studio, vLLM and llama.cpp report usage in the last chunk when asked.
          includeUsage: true,
        }),
      };
  }
}

/** Thrown for a capability a provider lacks; config validation keeps this from happening. */
function unsupported(kind: ProviderKind, what: string): never {
  throw new Error(`${kind} has no ${what} models`);
}

/**
 * The AI SDK models for a registry's candidates. Provider instances are made on first use and kept.
 * OpenAI chat goes through Chat Completions (`openai.chat`), not the Responses API that `openai(model)`
 * defaults to in @ai-sdk/openai v3: it is what OpenAI-compatible proxies behind OPENAI_BASE_URL speak too.
 */
export function providerClientsOf(registry: ProviderRegistry, fetch?: Fetch): ProviderClients {
  const instances = new Map<string, Instance>();
  const instance = (candidate: Candidate): Instance => {
    let found = instances.get(candidate.provider);
    if (!found) {
      const settings = registry.providers[candidate.provider];
      if (!settings) throw new Error(`provider ${candidate.provider} is not configured`);
      found = instanceOf(settings, fetch);
      instances.set(candidate.provider, found);
    }
    return found;
  };
  return {
    languageModel(candidate) {
      const i = instance(candidate);
      switch (i.kind) {
        case 'openai':
          return i.provider.chat(candidate.model);
        case 'google':
        case 'huggingface':
          return i.provider(candidate.model);
        case 'togetherai':
          return i.provider.chatModel(candidate.model);
        case 'openai-compatible':
          return i.provider.chatModel(candidate.model);
        case 'elevenlabs':
          return unsupported(i.kind, 'chat');
      }
    },
    embeddingModel(candidate) {
      const i = instance(candidate);
      switch (i.kind) {
        case 'openai':
        case 'google':
        case 'togetherai':
        case 'openai-compatible':
          return i.provider.embeddingModel(candidate.model);
        default:
          return unsupported(i.kind, 'embedding');
      }
    },
    imageModel(candidate) {
      const i = instance(candidate);
      switch (i.kind) {
        case 'openai':
        case 'togetherai':
        case 'openai-compatible':
          return i.provider.imageModel(candidate.model);
        default:
          return unsupported(i.kind, 'image');
      }
    },
    transcriptionModel(candidate) {
      const i = instance(candidate);
      if (i.kind === 'openai') return i.provider.transcription(candidate.model);
      return unsupported(i.kind, 'transcription');
    },
    speechModel(candidate) {
      const i = instance(candidate);
      if (i.kind === 'openai' || i.kind === 'elevenlabs') return i.provider.speech(candidate.model);
      return unsupported(i.kind, 'speech');
    },
  };
}
