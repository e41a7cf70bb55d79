import { untilAborted } from '@aiva/shared';
import {
  embedMany,
  experimental_generateSpeech,
  experimental_transcribe,
  generateImage,
  type ModelMessage,
  streamText,
  type TextStreamPart,
  type ToolSet,
} from 'ai';
import { type Fetch, providerClientsOf, type TranscriptionModelV3 } from './clients.js';
import { type Candidate, type ProviderRegistry, secretsOf } from './config.js';
import { type Capability, NotConfiguredError, ProviderError } from './errors.js';
import { type AttemptEvent, toProviderError, withPolicy } from './policy.js';

/** Tokens of one chat reply; undefined when the provider did not report them. */
export interface ChatUsage {
  inputTokens: number | undefined;
  outputTokens: number | undefined;
}

/** A finished chat reply. */
export interface ChatResult {
  text: string;
  usage: ChatUsage;
  provider: string;
  model: string;
}

export interface ChatInput {
  messages: ModelMessage[];
  /** `provider:model` of a configured chat candidate to try first; the others stay its fallbacks. */
  model?: string | null;
  system?: string;
  signal?: AbortSignal;
  maxOutputTokens?: number;
}

/**
 * A streamed chat reply: iterate it (once) for the text deltas in order; `result` settles when the iteration
 * ends: the whole text with usage and the model that answered, or the error that ended the stream (also
 * thrown by the iteration). A consumer that stops early cancels the request, and `result` rejects.
 */
export interface ChatStream extends AsyncIterable<string> {
  readonly result: Promise<ChatResult>;
}

/** Vectors of texts, in their order, and the model that made them (`provider:model`). */
export interface Embeddings {
  vectors: Float32Array[];
  model: string;
  dimensions: number;
  usage: { tokens: number };
}

/** A generated image or speech audio. */
export interface GeneratedMedia {
  bytes: Uint8Array;
  mimeType: string;
  provider: string;
  model: string;
}

export interface Transcript {
  text: string;
  durationSeconds?: number;
  provider: string;
  model: string;
}

/** A capability's candidates in order, for an `aiModels` query. */
export type ConfiguredModels = Record<Capability, Array<{ provider: string; model: string }>>;

/** Every model capability the AI subgraph uses, each call through the retry / fallback policy. */
export interface AiModels {
  /** Throws NotConfiguredError at once (not on iteration) when no chat model is configured. */
  streamChat(input: ChatInput): ChatStream;
  /**
   * Vectors of the texts, in order. After a fallback they come from another model (another space, maybe
   * another dimension): `model` says which, and vectors of different models must not be compared.
   */
  embed(texts: readonly string[], signal?: AbortSignal): Promise<Embeddings>;
  /** One image; `mimeType` is sniffed from its bytes (e.g. `image/png`). */
  generateImage(
    prompt: string,
    options?: { size?: `${number}x${number}`; signal?: AbortSignal },
  ): Promise<GeneratedMedia>;
  /** `mimeType` is what the audio is (e.g. `audio/webm`): it names the upload the provider sees. */
  transcribe(audio: Uint8Array, mimeType: string, signal?: AbortSignal): Promise<Transcript>;
  /** `voice` is the provider's own voice name or id (OpenAI `alloy`, an ElevenLabs voice id); unset: its default. */
  speak(text: string, voice?: string, signal?: AbortSignal): Promise<GeneratedMedia>;
  /** The candidates of each capability, in the order they are tried (for an `aiModels` query). */
  configured(): ConfiguredModels;
}

export interface AiModelsOptions {
  /** Every attempt's end (provider, model, outcome, sanitized error): for logs and metrics. */
  onAttempt?: (event: AttemptEvent) => void;
  /** The fetch provider packages use (default: the global one). */
  fetch?: Fetch;
}

/** The models of a registry (see providerRegistryOf). */
export function createAiModels(registry: ProviderRegistry, options: AiModelsOptions = {}): AiModels {
  const clients = providerClientsOf(registry, options.fetch);
  const secrets = secretsOf(registry);
  const policyOf = (signal?: AbortSignal) => ({
    ...registry.policy,
    secrets,
    ...(signal ? { signal } : {}),
    ...(options.onAttempt ? { onAttempt: options.onAttempt } : {}),
  });
  const candidatesOf = (capability: Capability): Candidate[] => {
    const candidates = registry.candidates[capability];
    if (candidates.length === 0) throw new NotConfiguredError(capability);
    return candidates;
  };

  return {
    streamChat(input) {
      const configured = candidatesOf('chat');
      const preferred = configured.find((c) => idOf(c) === input.model);
      const candidates = preferred ? [preferred, ...configured.filter((c) => c !== preferred)] : configured;
      return chatStreamOf(() => runChat(candidates, input));
    },

    async embed(texts, signal) {
      const candidates = candidatesOf('embedding');
      if (texts.length === 0) {
        return { vectors: [], model: idOf(candidates[0]!), dimensions: 0, usage: { tokens: 0 } };
      }
      return withPolicy(
        candidates,
        async (candidate, attemptSignal) => {
          const result = await embedMany({
            model: clients.embeddingModel(candidate),
            values: [...texts],
            maxRetries: 0,
            maxParallelCalls: 2,
            abortSignal: attemptSignal,
          });
          const vectors = result.embeddings.map((embedding) => Float32Array.from(embedding));
          return {
            vectors,
            model: idOf(candidate),
            dimensions: dimensionsOf(vectors, candidate, texts.length),
            usage: { tokens: result.usage.tokens },
          };
        },
        policyOf(signal),
      );
    },

    async generateImage(prompt, imageOptions = {}) {
      return withPolicy(
        candidatesOf('image'),
        async (candidate, signal) => {
          const { image } = await generateImage({
            model: clients.imageModel(candidate),
            prompt,
            n: 1,
            ...(imageOptions.size ? { size: imageOptions.size } : {}),
            maxRetries: 0,
            abortSignal: signal,
          });
          return {
            bytes: image.uint8Array,
            mimeType: image.mediaType,
            provider: candidate.provider,
            model: candidate.model,
          };
        },
        policyOf(imageOptions.signal),
      );
    },

    async transcribe(audio, mimeType, signal) {
      return withPolicy(
        candidatesOf('transcription'),
        async (candidate, attemptSignal) => {
          const result = await experimental_transcribe({
            model: withMediaType(clients.transcriptionModel(candidate), mimeType),
            audio,
            maxRetries: 0,
            abortSignal: attemptSignal,
          });
          return {
            text: result.text,
            ...(result.durationInSeconds === undefined ? {} : { durationSeconds: result.durationInSeconds }),
            provider: candidate.provider,
            model: candidate.model,
          };
        },
        policyOf(signal),
      );
    },

    async speak(text, voice, signal) {
      return withPolicy(
        candidatesOf('speech'),
        async (candidate, attemptSignal) => {
          const { audio } = await experimental_generateSpeech({
            model: clients.speechModel(candidate),
            text,
            ...(voice ? { voice } : {}),
            maxRetries: 0,
            abortSignal: attemptSignal,
          });
          return {
            bytes: audio.uint8Array,
            mimeType: standardMimeType(audio.mediaType),
            provider: candidate.provider,
            model: candidate.model,
          };
        },
        policyOf(signal),
      );
    },

    configured() {
      const entries = Object.entries(registry.candidates).map(([capability, candidates]) => [
        capability,
        candidates.map(({ provider, model }) => ({ provider, model })),
      ]);
      return Object.fromEntries(entries) as ConfiguredModels;
    },
  };

  /**
   * The chat generator: the policy (retries, timeout, fallback) covers opening the stream up to its first
   * delta; after that, deltas are passed on as they come, a gap longer than the call timeout or a provider
   * error ends the stream with a `stream_broken` ProviderError, and nothing is retried (text was delivered).
   */
  async function* runChat(candidates: Candidate[], input: ChatInput): AsyncGenerator<string, ChatResult> {
    const opened = await withPolicy(
      candidates,
      (candidate, signal) => openChat(candidate, input, signal),
      policyOf(input.signal),
    );
    const { candidate, cancel } = opened;
    let text = '';
    try {
      if (opened.first !== undefined) {
        text += opened.first;
        yield opened.first;
      }
      let usage = opened.usage;
      while (!usage) {
        const part = await nextPart(opened, input.signal);
        if (part === undefined) break;
        if (part.type === 'text-delta' && part.text) {
          text += part.text;
          yield part.text;
        } else if (part.type === 'finish') {
          usage = usageOf(part.totalUsage);
        }
      }
      return {
        text,
        usage: usage ?? { inputTokens: undefined, outputTokens: undefined },
        ...idParts(candidate),
      };
    } finally {
      cancel();
    }
  }

  /**
   * The next part after the first delta, under the idle deadline. Returns undefined at the end; throws the
   * caller's abort reason, or a `stream_broken` ProviderError.
   */
  async function nextPart(
    opened: OpenedChat,
    callerSignal: AbortSignal | undefined,
  ): Promise<ChatPart | undefined> {
    const idle = new AbortController();
    const timer = setTimeout(() => idle.abort(), registry.policy.timeoutMs);
    try {
      const step = await untilAborted(
        opened.parts.next(),
        AbortSignal.any([idle.signal, ...(callerSignal ? [callerSignal] : [])]),
      );
      if (step.done) return undefined;
      if (step.value.type === 'error') throw step.value.error;
      if (step.value.type === 'abort') throw new Error('stream aborted');
      return step.value;
    } catch (error) {
      if (callerSignal?.aborted) throw callerSignal.reason;
      const cause = idle.signal.aborted
        ? new ProviderError({
            ...idParts(opened.candidate),
            kind: 'timeout',
            retryable: true,
            detail: `no token within ${registry.policy.timeoutMs} ms`,
          })
        : toProviderError(error, opened.candidate, { secrets });
      throw new ProviderError({
        ...idParts(opened.candidate),
        kind: 'stream_broken',
        retryable: false,
        ...(cause.status === undefined ? {} : { status: cause.status }),
        detail: `after the first token: ${cause.kind}${cause.detail ? `, ${cause.detail}` : ''}`,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * One chat attempt: starts the stream and reads it up to its first text delta (or its end, for an empty
   * reply). Errors before that are thrown for the policy to judge.
   */
  async function openChat(candidate: Candidate, input: ChatInput, signal: AbortSignal): Promise<OpenedChat> {
    const local = new AbortController();
    const result = streamText({
      model: clients.languageModel(candidate),
      messages: input.messages,
      ...(input.system ? { system: input.system } : {}),
      ...(input.maxOutputTokens ? { maxOutputTokens: input.maxOutputTokens } : {}),
      maxRetries: 0,
      abortSignal: AbortSignal.any([signal, local.signal]),
      // Errors arrive as stream parts; the default handler would print them (with the request) to the console.
      onError: () => {},
    });
    const parts = result.fullStream[Symbol.asyncIterator]();
    const cancel = () => {
      local.abort();
      void parts.return?.().catch(() => {});
    };
    try {
      for (;;) {
        const step = await untilAborted(parts.next(), signal);
        if (step.done) return { candidate, parts, cancel, first: undefined, usage: undefined };
        const part = step.value;
        if (part.type === 'error') throw part.error;
        if (part.type === 'abort') throw new Error('stream aborted');
        if (part.type === 'text-delta' && part.text)
          return { candidate, parts, cancel, first: part.text, usage: undefined };
        if (part.type === 'finish')
          return { candidate, parts, cancel, first: undefined, usage: usageOf(part.totalUsage) };
      }
    } catch (error) {
      cancel();
      throw error;
    }
  }
}

type ChatPart = TextStreamPart<ToolSet>;

/** A chat stream opened by one attempt, positioned after its first delta. */
interface OpenedChat {
  candidate: Candidate;
  parts: AsyncIterator<ChatPart>;
  /** Aborts the request and releases the stream. */
  cancel: () => void;
  first: string | undefined;
  /** Set when the stream already finished (no delta at all). */
  usage: ChatUsage | undefined;
}

/** Wraps the chat generator so its return value settles `result` and it can be read once. */
function chatStreamOf(run: () => AsyncGenerator<string, ChatResult>): ChatStream {
  let settle: { resolve: (r: ChatResult) => void; reject: (e: unknown) => void } | undefined;
  const result = new Promise<ChatResult>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // The caller may only iterate; an unread rejection must not become an unhandled one.
  result.catch(() => {});
  let read = false;
  return {
    result,
    async *[Symbol.asyncIterator]() {
      if (read) throw new Error('a chat stream can be read only once');
      read = true;
      let settled = false;
      try {
        const done = yield* run();
        settled = true;
        settle?.resolve(done);
      } catch (error) {
        settled = true;
        settle?.reject(error);
        throw error;
      } finally {
        if (!settled) settle?.reject(new Error('the chat stream was not read to its end'));
      }
    },
  };
}

/** The SDK's usage as ours. */
function usageOf(usage: { inputTokens: number | undefined; outputTokens: number | undefined }): ChatUsage {
  return { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens };
}

/**
 * A transcription model that tells the provider the caller's media type. The SDK would sniff it from the
 * bytes and fall back to `audio/wav`, which misnames WebM or M4A uploads (the provider then refuses them).
 */
function withMediaType(model: TranscriptionModelV3, mediaType: string): TranscriptionModelV3 {
  return {
    specificationVersion: model.specificationVersion,
    provider: model.provider,
    modelId: model.modelId,
    doGenerate: (options) => model.doGenerate({ ...options, mediaType }),
  };
}

/** The common dimension of a batch of vectors; an empty or ragged batch is an unusable answer. */
function dimensionsOf(vectors: Float32Array[], candidate: Candidate, expected: number): number {
  const dimensions = vectors[0]?.length ?? 0;
  if (vectors.length !== expected || dimensions === 0 || vectors.some((v) => v.length !== dimensions)) {
    throw new ProviderError({
      ...idParts(candidate),
      kind: 'invalid_response',
      retryable: false,
      detail: `expected ${expected} vectors of one dimension, got ${vectors.length}`,
    });
  }
  return dimensions;
}

/** Names the AI SDK gives some audio types, and the registered names stored media should carry. */
const STANDARD_MIME_TYPES: Record<string, string> = { 'audio/mp3': 'audio/mpeg', 'audio/x-wav': 'audio/wav' };

/** The registered name of a media type (the SDK calls MP3 `audio/mp3`, browsers and IANA `audio/mpeg`). */
function standardMimeType(mimeType: string): string {
  return STANDARD_MIME_TYPES[mimeType] ?? mimeType;
}

/** `provider:model`, as embeddings are labelled. */
function idOf(candidate: Candidate): string {
  return `${candidate.provider}:${candidate.model}`;
}

function idParts(candidate: Candidate): { provider: string; model: string } {
  return { provider: candidate.provider, model: candidate.model };
}
