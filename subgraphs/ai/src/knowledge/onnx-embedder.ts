import { access } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { FeatureExtractionPipeline, Tensor } from '@huggingface/transformers';
import { type Embedder, throwIfAborted } from './embedder.js';

export interface OnnxEmbedderOptions {
  /** The model name recorded with the vectors (default `onnx:<directory name>`). */
  model?: string;
  /** Texts per forward pass (default 16). */
  batchSize?: number;
}

/** The files of a Transformers.js `feature-extraction` export that must be in the model directory. */
export const ONNX_MODEL_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx'];

/** Rows of a `[n, dimensions]` tensor as vectors. */
function rowsOf(tensor: Tensor, expected: number): Float32Array[] {
  const [rows, dimensions] = tensor.dims;
  if (rows !== expected || dimensions === undefined || tensor.dims.length !== 2) {
    throw new Error(`OnnxEmbedder: expected ${expected} embeddings, got a tensor of shape [${tensor.dims}]`);
  }
  const data = tensor.data as ArrayLike<number>;
  return Array.from({ length: rows }, (_, row) => {
    const vector = Float32Array.from({ length: dimensions }, (_, i) => Number(data[row * dimensions + i]));
    // Normalising a zero mean (a text with nothing to embed) divides by zero: that text gets the zero vector.
    return vector.every(Number.isFinite) ? vector : new Float32Array(dimensions);
  });
}

/** Fails with the files missing from `dir`, before Transformers.js is even loaded. */
async function checkModelDirectory(dir: string): Promise<void> {
  const missing: string[] = [];
  for (const file of ONNX_MODEL_FILES) {
    try {
      await access(join(dir, file));
    } catch {
      missing.push(file);
    }
  }
  if (missing.length > 0) {
    throw new Error(
      `OnnxEmbedder: no usable model in ${dir} (missing ${missing.join(', ')}). AI_LOCAL_MODEL_DIR must be a ` +
        'sentence-transformers model exported for Transformers.js (config.json, tokenizer.json, ' +
        'tokenizer_config.json, onnx/model.onnx); models are never downloaded.',
    );
  }
}

/**
 * A semantic embedder running a local sentence-transformers model in ONNX form (a directory with
 * `config.json`, `tokenizer.json`, `tokenizer_config.json` and `onnx/model.onnx`, as exported for
 * Transformers.js, e.g. `sentence-transformers/all-MiniLM-L6-v2`) through `@huggingface/transformers` on
 * onnxruntime-node's CPU backend: mean pooling, L2-normalised. Never downloads: the directory is read as a
 * path, with `local_files_only` and remote models disabled, so a missing file is an error, not a request.
 * Transformers.js (and onnxruntime) is imported on the first `fromDirectory`, so services that do not use a
 * local model never load it. Tested with a tiny model built at test time (test/knowledge/tiny-onnx-model.ts).
 */
export class OnnxEmbedder implements Embedder {
  readonly kind = 'semantic' as const;

  private constructor(
    readonly model: string,
    readonly dimensions: number,
    private readonly extract: FeatureExtractionPipeline,
    private readonly batchSize: number,
  ) {}

  /** Loads the model in `dir` and runs it once to learn its dimensions. */
  static async fromDirectory(dir: string, options: OnnxEmbedderOptions = {}): Promise<OnnxEmbedder> {
    const path = resolve(dir);
    await checkModelDirectory(path);
    const { env, pipeline } = await import('@huggingface/transformers');
    // Process-wide settings of Transformers.js: nothing in this service may fetch or cache a model.
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.useFSCache = false;
    // An absolute path is not a Hub model id: Transformers.js reads `<path>/<file>` as is.
    const extract = await pipeline('feature-extraction', path, {
      local_files_only: true,
      device: 'cpu',
      dtype: 'fp32',
    });
    try {
      const [probe] = rowsOf(await extract(['dimension probe'], { pooling: 'mean', normalize: true }), 1);
      const batchSize = Math.max(1, Math.floor(options.batchSize ?? 16));
      return new OnnxEmbedder(options.model ?? `onnx:${basename(path)}`, probe!.length, extract, batchSize);
    } catch (error) {
      await extract.dispose();
      throw error;
    }
  }

  async embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const vectors: Float32Array[] = [];
    for (let from = 0; from < texts.length; from += this.batchSize) {
      throwIfAborted(signal);
      const batch = texts.slice(from, from + this.batchSize);
      vectors.push(...rowsOf(await this.extract(batch, { pooling: 'mean', normalize: true }), batch.length));
    }
    throwIfAborted(signal);
    return vectors;
  }

  /** Releases the ONNX session. */
  async close(): Promise<void> {
    await this.extract.dispose();
  }
}
