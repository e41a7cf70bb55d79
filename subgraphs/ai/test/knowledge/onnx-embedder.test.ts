import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryBus, createMemoryCache, loadConfig, sessionRevocations } from '@aiva/shared';
import { capturingLogger, createTestTokenIssuer } from '@aiva/shared/testing';
import { env as transformersEnv } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AiApp, createAiApp } from '../../src/ai.app.js';
import { aiEnvSchema } from '../../src/config.js';
import { LexicalEmbedder } from '../../src/knowledge/lexical-embedder.js';
import { OnnxEmbedder } from '../../src/knowledge/onnx-embedder.js';
import { openSqliteAiStore } from '../../src/store/sqlite.js';
import { TINY_DIMENSIONS, writeTinyOnnxModel } from './tiny-onnx-model.js';

const dot = (a: Float32Array, b: Float32Array) => a.reduce((sum, value, i) => sum + value * b[i]!, 0);
const norm = (a: Float32Array) => Math.sqrt(dot(a, a));

/** Cosine similarity of the embeddings of two texts. */
async function similarity(
  embedder: { embed(texts: string[]): Promise<Float32Array[]> },
  a: string,
  b: string,
) {
  const [x, y] = await embedder.embed([a, b]);
  return dot(x!, y!) / (norm(x!) * norm(y!) || 1);
}

/**
 * Records every outgoing connection and fetch while `run` runs: TCP sockets (what `fetch`, `http` and `https`
 * use underneath, so a captured `fetch` is seen too), `globalThis.fetch` and Transformers.js' own `env.fetch`.
 * Any attempt is refused.
 */
async function recordingNetwork<T>(
  run: () => Promise<T>,
): Promise<{ attempts: string[]; outcome: Promise<T> }> {
  const attempts: string[] = [];
  const { connect } = net.Socket.prototype;
  const globalFetch = globalThis.fetch;
  const libraryFetch = transformersEnv.fetch;
  const refuse = (what: string) => {
    attempts.push(what);
    return Promise.reject(new Error(`network disabled in this test: ${what}`));
  };
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    attempts.push(`connect ${JSON.stringify(args[0])}`);
    setImmediate(() => this.destroy(new Error('network disabled in this test')));
    return this;
  } as typeof connect;
  globalThis.fetch = ((input: string | URL | Request) => refuse(`fetch ${String(input)}`)) as typeof fetch;
  transformersEnv.fetch = (input: string | URL) => refuse(`env.fetch ${String(input)}`);
  try {
    const outcome = run();
    await outcome.catch(() => {});
    return { attempts, outcome };
  } finally {
    net.Socket.prototype.connect = connect;
    globalThis.fetch = globalFetch;
    transformersEnv.fetch = libraryFetch;
  }
}

let parent: string;
let modelDir: string;
let embedder: OnnxEmbedder;

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), 'aiva-onnx-'));
  ({ dir: modelDir } = await writeTinyOnnxModel(parent, 'tiny-minilm'));
  embedder = await OnnxEmbedder.fromDirectory(modelDir, { batchSize: 2 });
});

afterAll(async () => {
  await embedder?.close();
  if (parent) await rm(parent, { recursive: true, force: true });
});

/** `fetch` as Transformers.js holds it: captured before any test replaces `globalThis.fetch`. */
const capturedFetch = globalThis.fetch;

describe('the network recorder of these tests', () => {
  it('sees requests, even through a fetch captured before it started', async () => {
    const { attempts } = await recordingNetwork(async () => {
      await capturedFetch('http://127.0.0.1:59999/config.json').catch(() => {});
      await new Promise<void>((done) => {
        get('http://127.0.0.1:59999/tokenizer.json', () => done()).on('error', () => done());
      });
      await transformersEnv.fetch('https://huggingface.co/x/resolve/main/config.json').catch(() => {});
    });
    expect(attempts, JSON.stringify(attempts)).toHaveLength(3);
    expect(attempts.filter((attempt) => attempt.startsWith('connect'))).toHaveLength(2);
  });
});

describe('OnnxEmbedder', () => {
  it('loads a Transformers.js model directory and describes it', () => {
    expect(embedder.kind).toBe('semantic');
    expect(embedder.dimensions).toBe(TINY_DIMENSIONS);
    expect(embedder.model).toBe('onnx:tiny-minilm');
  });

  it('takes a model name of its own', async () => {
    const named = await OnnxEmbedder.fromDirectory(modelDir, { model: 'minilm-v2' });
    try {
      expect(named.model).toBe('minilm-v2');
    } finally {
      await named.close();
    }
  });

  it('returns one L2-normalised vector per text, in order, across batches', async () => {
    const texts = ['car', 'the doctor', 'a banana', 'happy', 'the quick guitar', 'ocean', 'buy a car'];
    const vectors = await embedder.embed(texts);
    expect(vectors).toHaveLength(texts.length);
    for (const vector of vectors) {
      expect(vector).toBeInstanceOf(Float32Array);
      expect(vector).toHaveLength(TINY_DIMENSIONS);
      expect(norm(vector)).toBeCloseTo(1, 5);
    }
    // Batches of 2 give what each text gives alone: nothing is shuffled, dropped or padded into another.
    for (const [i, text] of texts.entries()) {
      const [alone] = await embedder.embed([text]);
      for (const [k, value] of alone!.entries()) expect(vectors[i]![k]).toBeCloseTo(value, 5);
    }
    expect(await embedder.embed([])).toEqual([]);
    const [empty] = await embedder.embed(['']);
    // A text with nothing to embed (here: no token has a vector) gives the zero vector, not NaN.
    expect([...empty!]).toEqual(new Array(TINY_DIMENSIONS).fill(0));
  });

  it('puts synonyms near each other, which the lexical embedder cannot', async () => {
    const lexical = new LexicalEmbedder();
    for (const [a, b] of [
      ['car', 'automobile'],
      ['doctor', 'physician'],
      ['glad', 'happy'],
      ['the doctor is fast', 'a physician is quick'],
    ] as const) {
      const semantic = await similarity(embedder, a, b);
      expect(semantic, `${a} ~ ${b}`).toBeGreaterThan(0.9);
      expect(semantic - (await similarity(lexical, a, b)), `${a} ~ ${b}, lexical`).toBeGreaterThan(0.5);
    }
    for (const [a, b] of [
      ['car', 'banana'],
      ['doctor', 'guitar'],
      ['automobile', 'physician'],
    ] as const) {
      expect(await similarity(embedder, a, b), `${a} / ${b}`).toBeLessThan(0.2);
    }
    // Nearest neighbours of a query among notes that share no word with it.
    const notes = ['a physician', 'my banana', 'an automobile', 'the sea'];
    const [query, ...vectors] = await embedder.embed(['car', ...notes]);
    const ranked = notes
      .map((note, i) => ({ note, score: dot(query!, vectors[i]!) }))
      .sort((x, y) => y.score - x.score);
    expect(ranked[0]!.note).toBe('an automobile');
  });

  it('rejects with the reason of an aborted signal', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop embedding'));
    await expect(embedder.embed(['car', 'doctor', 'banana'], controller.signal)).rejects.toThrow(
      'stop embedding',
    );
    const timedOut = AbortSignal.abort();
    await expect(embedder.embed(['car'], timedOut)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('fails clearly, without any network request, when the directory is missing', async () => {
    const missing = join(parent, 'no-such-model');
    const { attempts, outcome } = await recordingNetwork(() => OnnxEmbedder.fromDirectory(missing));
    await expect(outcome).rejects.toThrow(
      `OnnxEmbedder: no usable model in ${missing} (missing config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx)`,
    );
    expect(attempts).toEqual([]);
  });

  it('fails clearly, without any network request, when the model file is missing', async () => {
    const { dir } = await writeTinyOnnxModel(parent, 'no-onnx');
    await unlink(join(dir, 'onnx', 'model.onnx'));
    const { attempts, outcome } = await recordingNetwork(() => OnnxEmbedder.fromDirectory(dir));
    await expect(outcome).rejects.toThrow(/no usable model in .*no-onnx \(missing onnx\/model\.onnx\)/);
    expect(attempts).toEqual([]);
  });

  it('fails without any network request when a file is not a model', async () => {
    const { dir } = await writeTinyOnnxModel(parent, 'broken');
    // All files present, the tokenizer broken: Transformers.js itself must not fall back to the Hub.
    await writeFile(join(dir, 'tokenizer.json'), '{');
    const { attempts, outcome } = await recordingNetwork(() => OnnxEmbedder.fromDirectory(dir));
    await expect(outcome).rejects.toThrow(/JSON/);
    expect(attempts).toEqual([]);
  });

  it('loads a model with the network cut off', async () => {
    const { attempts, outcome } = await recordingNetwork(() => OnnxEmbedder.fromDirectory(modelDir));
    const loaded = await outcome;
    try {
      expect(attempts).toEqual([]);
      expect(loaded.dimensions).toBe(TINY_DIMENSIONS);
    } finally {
      await loaded.close();
    }
  });
});

describe('the ai service with AI_LOCAL_MODEL_DIR', () => {
  const captured = capturingLogger('ai-onnx-test', 'info');
  const logs = captured.lines as Array<{ msg?: string; model?: string; dimensions?: number }>;
  let app: AiApp;
  let url: string;
  let userToken: string;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'aiva-onnx-app-'));
    const tokens = await createTestTokenIssuer();
    userToken = await tokens.token('01890000-0000-7000-8000-00000000071e');
    const config = loadConfig(aiEnvSchema, {
      AI_PORT: '0',
      LOG_LEVEL: 'info',
      DATA_DIR: dataDir,
      AI_LOCAL_MODEL_DIR: modelDir,
    });
    app = await createAiApp({
      config,
      logger: captured.logger,
      bus: createMemoryBus(),
      store: openSqliteAiStore({ file: ':memory:' }),
      verifier: tokens.verifier,
      revocations: sessionRevocations(createMemoryCache()),
      discovery: false,
    });
    url = `${await app.listen()}/graphql`;
  });

  afterAll(async () => {
    await app?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function call<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${userToken}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data?: T; errors?: unknown[] };
    expect(body.errors).toBeUndefined();
    return body.data!;
  }

  it('embeds with the local ONNX model when no embedding provider is configured', async () => {
    expect(logs).toContainEqual(
      expect.objectContaining({
        msg: 'embeddings from a local ONNX model',
        model: 'onnx:tiny-minilm',
        dimensions: TINY_DIMENSIONS,
      }),
    );
    expect(logs.some((line) => line.msg?.includes('lexical embedder'))).toBe(false);
  });

  it('finds a note by a synonym of its words', async () => {
    const index = 'mutation($i: IndexDocumentInput!) { indexDocument(input: $i) { id } }';
    await call(index, { i: { title: 'Garage', text: 'my automobile' } });
    await call(index, { i: { title: 'Shopping', text: 'a banana' } });
    await call(index, { i: { title: 'Health', text: 'the physician' } });
    const search = 'query($q: String!) { semanticSearch(query: $q, first: 3) { title score } }';
    const car = await call<{ semanticSearch: Array<{ title: string; score: number }> }>(search, { q: 'car' });
    expect(car.semanticSearch[0]?.title).toBe('Garage');
    const doctor = await call<{ semanticSearch: Array<{ title: string }> }>(search, { q: 'a doctor' });
    expect(doctor.semanticSearch[0]?.title).toBe('Health');
  });
});
