import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NotConfiguredError, ProviderError } from '../../src/providers/errors.js';
import { ask, KEYS, modelsFor, readAll } from './fixtures.js';
import { GOOGLE_DELTAS, googleServer } from './servers/google.js';
import { OPENAI_DELTAS, openAIServer } from './servers/openai.js';

/** Two real fakes, OpenAI first and Gemini second, for fallback across providers. */
describe('provider fallback, timeouts and failures', () => {
  const openai = openAIServer();
  const google = googleServer();
  beforeAll(async () => {
    await Promise.all([openai.start(), google.start()]);
  });
  afterAll(async () => {
    await Promise.all([openai.close(), google.close()]);
  });
  beforeEach(() => {
    openai.reset();
    google.reset();
  });

  const bothProviders = (extra: Record<string, string> = {}) =>
    modelsFor({
      OPENAI_API_KEY: KEYS.openai,
      OPENAI_BASE_URL: `${openai.url}/v1`,
      GOOGLE_GENERATIVE_AI_API_KEY: KEYS.google,
      GOOGLE_BASE_URL: `${google.url}/v1beta`,
      AI_CHAT_MODELS: 'openai:gpt-4o-mini,google:gemini-2.0-flash',
      AI_EMBEDDING_MODELS: 'openai:text-embedding-3-small,google:gemini-embedding-001',
      AI_CALL_TIMEOUT_MS: '400',
      ...extra,
    });

  it("tries a conversation's chosen model first, the others staying its fallbacks", async () => {
    const { models } = bothProviders();
    const chosen = await readAll(
      models.streamChat({ messages: ask('Hi'), model: 'google:gemini-2.0-flash' }),
    );
    expect(chosen.deltas).toEqual(GOOGLE_DELTAS);
    expect(openai.requests).toHaveLength(0);
    google.failNext(1, 401);
    const fallback = await readAll(
      models.streamChat({ messages: ask('Hi'), model: 'google:gemini-2.0-flash' }),
    );
    expect(fallback.deltas).toEqual(OPENAI_DELTAS);
    // A model that is not configured changes nothing: the configured order.
    openai.reset();
    const unknown = await readAll(models.streamChat({ messages: ask('Hi'), model: 'openai:gpt-5' }));
    expect(unknown.deltas).toEqual(OPENAI_DELTAS);
  });

  it('times a hanging provider out and streams the chat from the second one', async () => {
    openai.hangNext(1);
    const { models, attempts } = bothProviders();
    const stream = models.streamChat({ messages: ask('Hi') });
    const { deltas, error } = await readAll(stream);
    expect(error).toBeUndefined();
    expect(deltas).toEqual(GOOGLE_DELTAS);
    await expect(stream.result).resolves.toMatchObject({ provider: 'google', model: 'gemini-2.0-flash' });
    expect(attempts.map((a) => [a.provider, a.outcome, a.error?.kind])).toEqual([
      ['openai', 'fallback', 'timeout'],
      ['google', 'ok', undefined],
    ]);
    expect(openai.requests).toHaveLength(1);
  });

  it('times a hanging embedding call out and falls back, the vectors naming the model that made them', async () => {
    openai.hangNext(1);
    const { models } = bothProviders();
    const result = await models.embed(['a', 'b']);
    expect(result.model).toBe('google:gemini-embedding-001');
    expect(result.dimensions).toBe(6);
  });

  it('falls back at once when Retry-After is beyond the retry budget', async () => {
    openai.failNext(1, 429, '120');
    const { models, attempts } = bothProviders({ AI_RETRY_BUDGET_MS: '1000' });
    const { deltas } = await readAll(models.streamChat({ messages: ask('Hi') }));
    expect(deltas).toEqual(GOOGLE_DELTAS);
    expect(attempts.map((a) => [a.provider, a.outcome, a.error?.status])).toEqual([
      ['openai', 'fallback', 429],
      ['google', 'ok', undefined],
    ]);
  });

  it('falls back when the first key is refused, and never shows the key', async () => {
    openai.failNext(1, 401);
    const { models, attempts } = bothProviders();
    const { deltas } = await readAll(models.streamChat({ messages: ask('Hi') }));
    expect(deltas).toEqual(GOOGLE_DELTAS);
    expect(attempts[0]).toMatchObject({ outcome: 'fallback', error: { kind: 'auth', status: 401 } });
    expect(attempts[0]?.error?.message).not.toContain(KEYS.openai);
  });

  it('fails at once on a refused request (400), without trying the next provider', async () => {
    openai.failNext(1, 400);
    const { models } = bothProviders();
    const { error } = await readAll(models.streamChat({ messages: ask('Hi') }));
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ provider: 'openai', kind: 'rejected', status: 400, retryable: false });
    expect(google.requests).toHaveLength(0);
  });

  it('throws a ProviderError naming the last provider when every candidate fails, without keys or prompt', async () => {
    openai.failNext(1, 401);
    google.failNext(3, 503, '0');
    const { models } = bothProviders();
    const stream = models.streamChat({ messages: ask('my secret question') });
    const { deltas, error } = await readAll(stream);
    expect(deltas).toEqual([]);
    expect(error).toBeInstanceOf(ProviderError);
    const failure = error as ProviderError;
    expect(failure).toMatchObject({
      provider: 'google',
      model: 'gemini-2.0-flash',
      status: 503,
      retryable: true,
    });
    expect(failure.attempts).toEqual([
      { provider: 'openai', model: 'gpt-4o-mini', kind: 'auth', status: 401 },
    ]);
    expect(failure.message).toContain('google:gemini-2.0-flash');
    const everything = JSON.stringify({ ...failure, message: failure.message, stack: failure.stack });
    for (const key of Object.values(KEYS)) expect(everything).not.toContain(key);
    expect(everything).not.toContain('my secret question');
    await expect(stream.result).rejects.toBe(error);
    expect(google.requests).toHaveLength(3);
  });

  it('gives up the retries of a candidate after AI_MAX_RETRIES and falls back', async () => {
    openai.failNext(5, 500, '0');
    const { models, attempts } = bothProviders({ AI_MAX_RETRIES: '1' });
    const { deltas } = await readAll(models.streamChat({ messages: ask('Hi') }));
    expect(deltas).toEqual(GOOGLE_DELTAS);
    expect(attempts.map((a) => `${a.provider}:${a.outcome}`)).toEqual([
      'openai:retry',
      'openai:fallback',
      'google:ok',
    ]);
  });

  it("stops when the caller's signal aborts, with its reason, trying nothing else", async () => {
    openai.hangNext(1);
    const { models } = bothProviders({ AI_CALL_TIMEOUT_MS: '10000' });
    const caller = new AbortController();
    const stream = models.streamChat({ messages: ask('Hi'), signal: caller.signal });
    const reading = readAll(stream);
    // Abort once the request is in flight at the first provider.
    while (openai.requests.length === 0) await new Promise((resolve) => setImmediate(resolve));
    const reason = new Error('client went away');
    caller.abort(reason);
    const { error } = await reading;
    expect(error).toBe(reason);
    expect(google.requests).toHaveLength(0);
  });

  it('does not retry a stream broken after its first delta, even with a fallback configured', async () => {
    openai.breakNextStream(1);
    const { models } = bothProviders();
    const { deltas, error } = await readAll(models.streamChat({ messages: ask('Hi') }));
    expect(deltas).toEqual(OPENAI_DELTAS.slice(0, 1));
    expect(error).toMatchObject({ kind: 'stream_broken', provider: 'openai' });
    expect(google.requests).toHaveLength(0);
  });

  it('ends a stream that goes silent after its first delta once the call timeout passes, without a retry', async () => {
    openai.stallNextStream(1);
    const { models } = bothProviders();
    const { deltas, error } = await readAll(models.streamChat({ messages: ask('Hi') }));
    expect(deltas).toEqual(OPENAI_DELTAS.slice(0, 1));
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({
      kind: 'stream_broken',
      provider: 'openai',
      detail: expect.stringMatching(/timeout/),
    });
    expect(openai.requests).toHaveLength(1);
    expect(google.requests).toHaveLength(0);
  });

  it("ends a started stream with the caller's abort reason", async () => {
    openai.stallNextStream(1);
    const { models } = bothProviders({ AI_CALL_TIMEOUT_MS: '10000' });
    const caller = new AbortController();
    const reason = new Error('unsubscribed');
    const deltas: string[] = [];
    const reading = (async () => {
      for await (const delta of models.streamChat({ messages: ask('Hi'), signal: caller.signal })) {
        deltas.push(delta);
        caller.abort(reason);
      }
    })();
    await expect(reading).rejects.toBe(reason);
    expect(deltas).toEqual(OPENAI_DELTAS.slice(0, 1));
  });

  it('cancels the request when the reader stops early', async () => {
    const { models } = bothProviders();
    const stream = models.streamChat({ messages: ask('Hi') });
    for await (const delta of stream) {
      expect(delta).toBe(OPENAI_DELTAS[0]);
      break;
    }
    await expect(stream.result).rejects.toThrow(/not read to its end/);
  });
});

describe('an empty reply', () => {
  const openai = openAIServer({ deltas: [] });
  beforeAll(async () => {
    await openai.start();
  });
  afterAll(async () => {
    await openai.close();
  });

  it('is a stream without deltas and an empty text, with usage', async () => {
    const { models } = modelsFor({ OPENAI_API_KEY: KEYS.openai, OPENAI_BASE_URL: `${openai.url}/v1` });
    const stream = models.streamChat({ messages: ask('Say nothing') });
    const { deltas, error } = await readAll(stream);
    expect(error).toBeUndefined();
    expect(deltas).toEqual([]);
    await expect(stream.result).resolves.toEqual({
      text: '',
      usage: { inputTokens: 12, outputTokens: 0 },
      provider: 'openai',
      model: 'gpt-4o-mini',
    });
  });
});

describe('capabilities without a model', () => {
  it('throws NotConfiguredError naming the variable and a key to set', () => {
    const { models } = modelsFor({});
    expect(() => models.streamChat({ messages: ask('Hi') })).toThrow(NotConfiguredError);
    expect(() => models.streamChat({ messages: ask('Hi') })).toThrow(
      "No chat model is configured: set AI_CHAT_MODELS and the provider's key (e.g. OPENAI_API_KEY)",
    );
  });

  it('rejects each other capability with its own variable', async () => {
    const { models } = modelsFor({ GOOGLE_GENERATIVE_AI_API_KEY: KEYS.google });
    await expect(models.generateImage('x')).rejects.toThrow(/AI_IMAGE_MODELS/);
    await expect(models.transcribe(new Uint8Array([1]), 'audio/wav')).rejects.toThrow(
      /AI_TRANSCRIPTION_MODELS/,
    );
    await expect(models.speak('x')).rejects.toThrow(/AI_SPEECH_MODELS/);
  });

  it('lists the configured candidates per capability', () => {
    const { models } = modelsFor({
      OPENAI_API_KEY: KEYS.openai,
      ELEVENLABS_API_KEY: KEYS.elevenlabs,
      AI_CHAT_MODELS: 'openai:gpt-4o',
    });
    expect(models.configured()).toEqual({
      chat: [{ provider: 'openai', model: 'gpt-4o' }],
      embedding: [{ provider: 'openai', model: 'text-embedding-3-small' }],
      image: [{ provider: 'openai', model: 'gpt-image-1' }],
      transcription: [{ provider: 'openai', model: 'whisper-1' }],
      speech: [
        { provider: 'openai', model: 'gpt-4o-mini-tts' },
        { provider: 'elevenlabs', model: 'eleven_flash_v2_5' },
      ],
    });
  });
});
