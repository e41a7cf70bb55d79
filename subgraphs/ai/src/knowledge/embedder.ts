/**
 * Turns texts into vectors for the knowledge index. Implementations: {@link LexicalEmbedder} (built in, no
 * model files), `OnnxEmbedder` (a local sentence-transformers model), and later the AI SDK's remote providers.
 */
export interface Embedder {
  /** Names the model; with `dimensions`, it picks the vector collection (vectors of two models never mix). */
  readonly model: string;
  /** Length of every vector `embed` returns. */
  readonly dimensions: number;
  /**
   * `lexical`: texts sharing words score high, synonyms and paraphrases do not. `semantic`: a learned model,
   * texts close in meaning score high. Callers may tell users which kind of search they get.
   */
  readonly kind: 'lexical' | 'semantic';
  /**
   * One vector per text, in order, each `dimensions` long and L2-normalised (a text with nothing to embed may
   * give the zero vector). Rejects with the signal's reason once `signal` is aborted.
   */
  embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]>;
}

/** Throws the signal's reason (an `AbortError` by default) when it is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  signal?.throwIfAborted();
}
