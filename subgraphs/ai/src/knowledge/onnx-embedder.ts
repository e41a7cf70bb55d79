import { basename, dirname, resolve } from 'node:path';
import { type Embedder, throwIfAborted } from './embedder.js';

/**
 * The package that runs ONNX models. It is NOT a dependency yet: the name is held in a variable so that the
 * TypeScript build neither needs nor checks it, and `fromDirectory` fails with a clear message until it is added.
 */
const TRANSFORMERS_PACKAGE: string = '@huggingface/transformers';

/** The part of a transformers.js tensor read here. */
interface TensorLike {
  dims: number[];
  data: ArrayLike<number>;
}

type FeatureExtractor = (
  texts: string[],
  options: { pooling: 'mean'; normalize: boolean },
) => Promise<TensorLike>;

/** The part of `@huggingface/transformers` used here. */
interface TransformersModule {
  env: { allowRemoteModels: boolean; allowLocalModels: boolean; localModelPath: string };
  pipeline(
    task: 'feature-extraction',
    model: string,
    options?: Record<string, unknown>,
  ): Promise<FeatureExtractor>;
}

export interface OnnxEmbedderOptions {
  /** The model name recorded with the vectors (default `onnx:<directory name>`). */
  model?: string;
  /** Texts per forward pass (default 16). */
  batchSize?: number;
}

async function loadTransformers(): Promise<TransformersModule> {
  try {
    return (await import(TRANSFORMERS_PACKAGE)) as TransformersModule;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `OnnxEmbedder needs the ${TRANSFORMERS_PACKAGE} package, which is not installed (${reason}). ` +
        'Add it to @aiva/ai, or use the lexical embedder.',
    );
  }
}

/** Rows of a `[n, dimensions]` tensor as vectors. */
function rowsOf(tensor: TensorLike, expected: number): Float32Array[] {
  const [rows, dimensions] = tensor.dims;
  if (rows !== expected || dimensions === undefined) {
    throw new Error(`OnnxEmbedder: expected ${expected} embeddings, got a tensor of shape [${tensor.dims}]`);
  }
  return Array.from({ length: rows }, (_, row) =>
    Float32Array.from({ length: dimensions }, (_, i) => tensor.data[row * dimensions + i]!),
  );
}

/**
 * A semantic embedder running a local sentence-transformers model in ONNX form (a directory with
 * `config.json`, `tokenizer.json` and `onnx/model.onnx`, as exported for transformers.js) through
 * `@huggingface/transformers`: mean pooling, L2-normalised. Never downloads: remote models are disabled, the
 * model must be on disk. UNTESTED in this repository until that package and a model are available.
 */
export class OnnxEmbedder implements Embedder {
  readonly kind = 'semantic' as const;

  private constructor(
    readonly model: string,
    readonly dimensions: number,
    private readonly extract: FeatureExtractor,
    private readonly batchSize: number,
  ) {}

  /** Loads the model in `dir` and runs it once to learn its dimensions. */
  static async fromDirectory(dir: string, options: OnnxEmbedderOptions = {}): Promise<OnnxEmbedder> {
    const transformers = await loadTransformers();
    const path = resolve(dir);
    transformers.env.allowRemoteModels = false;
    transformers.env.allowLocalModels = true;
    transformers.env.localModelPath = `${dirname(path)}/`;
    const name = basename(path);
    const extract = await transformers.pipeline('feature-extraction', name);
    const [probe] = rowsOf(await extract(['dimension probe'], { pooling: 'mean', normalize: true }), 1);
    const batchSize = Math.max(1, Math.floor(options.batchSize ?? 16));
    return new OnnxEmbedder(options.model ?? `onnx:${name}`, probe!.length, extract, batchSize);
  }

  async embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const vectors: Float32Array[] = [];
    for (let from = 0; from < texts.length; from += this.batchSize) {
      throwIfAborted(signal);
      const batch = texts.slice(from, from + this.batchSize);
      vectors.push(...rowsOf(await this.extract(batch, { pooling: 'mean', normalize: true }), batch.length));
    }
    return vectors;
  }
}
