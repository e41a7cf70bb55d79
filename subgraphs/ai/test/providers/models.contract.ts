import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/providers/errors.js';
import { ask, modelsFor, readAll } from './fixtures.js';
import {
  type FakeProviderServer,
  jsonOf,
  MP3_BYTES,
  PNG_BYTES,
  type RecordedRequest,
  vectorOf,
} from './servers/harness.js';

/** One provider's fake and how the layer is pointed at it. */
export interface ProviderUnderTest {
  /** The provider name in candidates and results. */
  provider: string;
  model: string;
  /** A new (not started) fake server. */
  fake: () => FakeProviderServer;
  /** The environment pointing the capability's candidates at `url` (the fake's). */
  env: (url: string) => Record<string, string>;
  /** The path the capability's requests go to. */
  path: RegExp;
  /** Provider-specific checks of a request (auth header, body shape). */
  checkRequest?: (request: RecordedRequest) => void;
}

/** Starts a fake for a describe block, fresh for each test. */
function useFake(create: () => FakeProviderServer): () => FakeProviderServer {
  const server = create();
  beforeAll(async () => {
    await server.start();
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    server.reset();
  });
  return () => server;
}

export interface ChatUnderTest extends ProviderUnderTest {
  deltas: string[];
  usage: { inputTokens: number; outputTokens: number };
  /** The prompt text as found in the request body, for the check that it was sent. */
  promptIn: (body: Record<string, unknown>) => string;
}

/** streamChat against a provider's wire format. */
export function describeChatContract(subject: ChatUnderTest): void {
  describe(`${subject.provider} chat`, () => {
    const server = useFake(subject.fake);

    it('streams the deltas in order, then the whole text, usage and the model that answered', async () => {
      const { models } = modelsFor(subject.env(server().url));
      const stream = models.streamChat({ messages: ask('Say hello'), system: 'Be brief.' });
      const { deltas, error } = await readAll(stream);
      expect(error).toBeUndefined();
      expect(deltas).toEqual(subject.deltas);
      await expect(stream.result).resolves.toEqual({
        text: subject.deltas.join(''),
        usage: subject.usage,
        provider: subject.provider,
        model: subject.model,
      });
      const [request] = server().requestsTo(subject.path);
      expect(request).toBeDefined();
      expect(subject.promptIn(jsonOf(request!))).toContain('Say hello');
      subject.checkRequest?.(request!);
    });

    it('retries once after a 429 with Retry-After and answers', async () => {
      server().failNext(1, 429, '0');
      const { models, attempts } = modelsFor(subject.env(server().url));
      const stream = models.streamChat({ messages: ask('Hi') });
      const { deltas, error } = await readAll(stream);
      expect(error).toBeUndefined();
      expect(deltas).toEqual(subject.deltas);
      expect(server().requestsTo(subject.path)).toHaveLength(2);
      expect(attempts.map((a) => [a.outcome, a.error?.status])).toEqual([
        ['retry', 429],
        ['ok', undefined],
      ]);
    });

    it('ends the stream with an error when it breaks after the first delta, without a retry', async () => {
      server().breakNextStream(1);
      const { models } = modelsFor(subject.env(server().url));
      const stream = models.streamChat({ messages: ask('Hi') });
      const { deltas, error } = await readAll(stream);
      expect(deltas).toEqual(subject.deltas.slice(0, 1));
      expect(error).toBeInstanceOf(ProviderError);
      expect(error).toMatchObject({ kind: 'stream_broken', provider: subject.provider, retryable: false });
      await expect(stream.result).rejects.toBe(error);
      expect(server().requestsTo(subject.path)).toHaveLength(1);
    });
  });
}

export interface EmbeddingUnderTest extends ProviderUnderTest {
  dimensions: number;
  /** The path a single text goes to when it differs (Gemini's `:embedContent`). */
  singlePath?: RegExp;
}

/** embed against a provider's wire format. */
export function describeEmbeddingContract(subject: EmbeddingUnderTest): void {
  describe(`${subject.provider} embeddings`, () => {
    const server = useFake(subject.fake);
    const texts = ['a', 'bb', 'a longer text'];

    it('returns one vector per text, in order, labelled with the model', async () => {
      const { models } = modelsFor(subject.env(server().url));
      const result = await models.embed(texts);
      expect(result.model).toBe(`${subject.provider}:${subject.model}`);
      expect(result.dimensions).toBe(subject.dimensions);
      expect(result.vectors).toHaveLength(texts.length);
      texts.forEach((text, i) => {
        expect(result.vectors[i]).toBeInstanceOf(Float32Array);
        expect(Array.from(result.vectors[i]!)).toEqual(
          Array.from(Float32Array.from(vectorOf(text, subject.dimensions))),
        );
      });
      const [request] = server().requestsTo(subject.path);
      subject.checkRequest?.(request!);
    });

    it('embeds a single text', async () => {
      const { models } = modelsFor(subject.env(server().url));
      const result = await models.embed(['only']);
      expect(result.vectors).toHaveLength(1);
      expect(server().requestsTo(subject.singlePath ?? subject.path)).toHaveLength(1);
    });

    it('retries after a 503 and answers', async () => {
      server().failNext(1, 503, '0');
      const { models, attempts } = modelsFor(subject.env(server().url));
      const result = await models.embed(texts);
      expect(result.vectors).toHaveLength(3);
      expect(attempts.map((a) => a.outcome)).toEqual(['retry', 'ok']);
    });

    it('answers no texts without a call', async () => {
      const { models } = modelsFor(subject.env(server().url));
      const result = await models.embed([]);
      expect(result).toMatchObject({
        vectors: [],
        dimensions: 0,
        model: `${subject.provider}:${subject.model}`,
      });
      expect(server().requests).toHaveLength(0);
    });
  });
}

/** generateImage against a provider's wire format. */
export function describeImageContract(subject: ProviderUnderTest): void {
  describe(`${subject.provider} images`, () => {
    const server = useFake(subject.fake);

    it('returns the image bytes and their type', async () => {
      const { models } = modelsFor(subject.env(server().url));
      const image = await models.generateImage('a red square', { size: '512x512' });
      expect(image).toEqual({
        bytes: PNG_BYTES,
        mimeType: 'image/png',
        provider: subject.provider,
        model: subject.model,
      });
      const [request] = server().requestsTo(subject.path);
      expect(jsonOf(request!).prompt).toBe('a red square');
      subject.checkRequest?.(request!);
    });
  });
}

/** speak against a provider's wire format. */
export function describeSpeechContract(subject: ProviderUnderTest & { voice: string }): void {
  describe(`${subject.provider} speech`, () => {
    const server = useFake(subject.fake);

    it('returns the audio bytes and their type', async () => {
      const { models } = modelsFor(subject.env(server().url));
      const audio = await models.speak('Hello there', subject.voice);
      expect(audio).toEqual({
        bytes: MP3_BYTES,
        mimeType: 'audio/mpeg',
        provider: subject.provider,
        model: subject.model,
      });
      const [request] = server().requestsTo(subject.path);
      expect(JSON.stringify(jsonOf(request!))).toContain('Hello there');
      subject.checkRequest?.(request!);
    });
  });
}

/** transcribe against a provider's wire format. */
export function describeTranscriptionContract(subject: ProviderUnderTest): void {
  describe(`${subject.provider} transcription`, () => {
    const server = useFake(subject.fake);

    it("sends the audio as the caller's media type and returns the text and duration", async () => {
      const { models } = modelsFor(subject.env(server().url));
      const audio = new Uint8Array([0x1a, 0x45, 0xdf, 0xa3, 1, 2, 3, 4]);
      const transcript = await models.transcribe(audio, 'audio/webm');
      expect(transcript).toEqual({
        text: 'heard 8 bytes of audio/webm',
        durationSeconds: 2.5,
        provider: subject.provider,
        model: subject.model,
      });
      const [request] = server().requestsTo(subject.path);
      subject.checkRequest?.(request!);
    });
  });
}

/** Asserts a request carried a bearer key. */
export function expectBearer(request: RecordedRequest, key: string): void {
  expect(request.headers.authorization).toBe(`Bearer ${key}`);
}
