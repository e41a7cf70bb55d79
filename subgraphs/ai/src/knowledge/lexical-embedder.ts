import { type Embedder, throwIfAborted } from './embedder.js';

/** The model name of {@link LexicalEmbedder}'s vectors; bump the version whenever its features change. */
export const LEXICAL_MODEL = 'aiva-lexical-v1';
/** Default vector length of {@link LexicalEmbedder}. */
export const LEXICAL_DIMENSIONS = 384;

/** Bigrams count for less than words: they sharpen matches of phrases without drowning single words. */
const BIGRAM_WEIGHT = 0.5;

/** Characters of scripts written without spaces: each one is a term (with bigrams of neighbours, CJK style). */
const UNSPACED_CHAR = '\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}';
/** A term: one unspaced-script character, or a run of other letters, marks and digits. */
const TERM = new RegExp(`[${UNSPACED_CHAR}]|(?:(?![${UNSPACED_CHAR}])[\\p{L}\\p{M}\\p{N}])+`, 'gu');

/**
 * The terms of a text: NFKC-normalised, lower-cased runs of Unicode letters and digits (punctuation and
 * symbols, emoji included, separate terms and are dropped); Chinese and Japanese characters one by one. A very
 * light stemmer folds plural `-s` of Latin words of 4 letters or more ("pies" → "pie", not "class", "this", "bus").
 */
export function lexicalTerms(text: string): string[] {
  const terms: string[] = [];
  for (const match of text.normalize('NFKC').toLowerCase().matchAll(TERM)) terms.push(stem(match[0]));
  return terms;
}

function stem(term: string): string {
  if (term.length >= 4 && /^[a-z]+s$/.test(term) && !/(?:ss|us|is)$/.test(term)) return term.slice(0, -1);
  return term;
}

/** FNV-1a, 32 bits, over the UTF-16 code units of `text`. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** MurmurHash3's finaliser: mixes every bit of `hash` into every other, for an independent sign bit. */
function fmix32(hash: number): number {
  let h = hash;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Feature counts of a text: `w:` word unigrams and `b:` bigrams of adjacent words. */
function featureCounts(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (feature: string) => counts.set(feature, (counts.get(feature) ?? 0) + 1);
  const terms = lexicalTerms(text);
  for (let i = 0; i < terms.length; i++) {
    add(`w:${terms[i]}`);
    if (i > 0) add(`b:${terms[i - 1]} ${terms[i]}`);
  }
  return counts;
}

export interface LexicalEmbedderOptions {
  /** Vector length (default {@link LEXICAL_DIMENSIONS}). Another length is another collection. */
  dimensions?: number;
}

/**
 * A deterministic, model-free embedder: signed feature hashing (FNV-1a) of word unigrams and bigrams, with
 * sublinear term frequency (1 + ln tf), L2-normalised. It is LEXICAL, not semantic: texts that share words
 * (after case folding and light plural folding) score high; synonyms, paraphrases and other languages do not.
 * It makes search work with no model files and no network, and is the fallback when no semantic model is
 * configured. Same text, same vector, on every machine and version of this model name.
 */
export class LexicalEmbedder implements Embedder {
  readonly model = LEXICAL_MODEL;
  readonly kind = 'lexical' as const;
  readonly dimensions: number;

  constructor(options: LexicalEmbedderOptions = {}) {
    const dimensions = options.dimensions ?? LEXICAL_DIMENSIONS;
    if (!Number.isInteger(dimensions) || dimensions < 2) {
      throw new RangeError(`LexicalEmbedder: dimensions must be an integer of at least 2, got ${dimensions}`);
    }
    this.dimensions = dimensions;
  }

  /** The vector of one text (synchronous; `embed` is the port's asynchronous form). */
  embedOne(text: string): Float32Array {
    const vector = new Float32Array(this.dimensions);
    for (const [feature, count] of featureCounts(text)) {
      const hash = fnv1a(feature);
      const weight = (1 + Math.log(count)) * (feature.startsWith('b:') ? BIGRAM_WEIGHT : 1);
      const index = hash % this.dimensions;
      vector[index] = vector[index]! + (fmix32(hash) & 1 ? -weight : weight);
    }
    let norm = 0;
    for (const value of vector) norm += value * value;
    if (norm === 0) return vector; // nothing to embed: the zero vector, never NaN
    const scale = 1 / Math.sqrt(norm);
    for (let i = 0; i < vector.length; i++) vector[i] = vector[i]! * scale;
    return vector;
  }

  async embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const vectors: Float32Array[] = [];
    for (const text of texts) {
      throwIfAborted(signal);
      vectors.push(this.embedOne(text));
    }
    return vectors;
  }
}
