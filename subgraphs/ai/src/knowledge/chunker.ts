import { Tiktoken } from 'js-tiktoken/lite';
import cl100kBase from 'js-tiktoken/ranks/cl100k_base';

/** One piece of a text, as {@link chunkText} returns it. */
export interface Chunk {
  /** Position of the chunk in the text, from 0. */
  index: number;
  /** `input.slice(start, end)`: the chunk's text, never starting or ending with whitespace. */
  text: string;
  /** Token count of `text` in `cl100k_base`. */
  tokens: number;
  /** Offset of the first character in the input (UTF-16 code units, like `String.prototype.slice`). */
  start: number;
  /** Offset just past the last character in the input. */
  end: number;
}

export interface ChunkOptions {
  /** Upper bound on a chunk's tokens (default 400). */
  maxTokens?: number;
  /** About how many tokens consecutive chunks share (default 60; less than `maxTokens`). */
  overlapTokens?: number;
}

/** The defaults of {@link ChunkOptions}. */
export const DEFAULT_CHUNK_MAX_TOKENS = 400;
export const DEFAULT_CHUNK_OVERLAP_TOKENS = 60;

let encoder: Tiktoken | undefined;

/**
 * The `cl100k_base` tokenizer, built once from the ranks bundled in `js-tiktoken` (no network). It is the
 * tokenizer of OpenAI's embedding models; for other models the counts are a close, stable estimate.
 */
function tokenizer(): Tiktoken {
  encoder ??= new Tiktoken(cl100kBase);
  return encoder;
}

/** tiktoken's pre-tokenizer: the text is cut into these pieces, and each piece is byte-pair encoded alone. */
const PIECE = new RegExp(cl100kBase.pat_str, 'gu');
/** Token counts of recent pieces: words repeat, and byte-pair encoding is the slow part of counting. */
const pieceCounts = new Map<string, number>();
const PIECE_CACHE_LIMIT = 100_000;
const PIECE_CACHE_MAX_LENGTH = 48;

function pieceTokens(piece: string): number {
  if (piece.length > PIECE_CACHE_MAX_LENGTH) return tokenizer().encode(piece, [], []).length;
  let count = pieceCounts.get(piece);
  if (count === undefined) {
    count = tokenizer().encode(piece, [], []).length;
    if (pieceCounts.size >= PIECE_CACHE_LIMIT) pieceCounts.clear();
    pieceCounts.set(piece, count);
  }
  return count;
}

/**
 * Token count of `text` in `cl100k_base`, special-token strings counting as plain text: the same number as
 * `encode(text).length`, computed piece by piece (as tiktoken does) with the counts of recent pieces remembered.
 */
export function countTokens(text: string): number {
  let count = 0;
  for (const match of text.matchAll(PIECE)) count += pieceTokens(match[0]);
  return count;
}

/** How strong the break before a unit is: the chunker prefers to end chunks at the strongest one. */
const Break = {
  /** Inside a word too long for one chunk. */
  None: 0,
  /** Between words. */
  Word: 1,
  /** After a sentence or at a line break. */
  Sentence: 2,
  /** At a blank line. */
  Paragraph: 3,
} as const;
type Break = (typeof Break)[keyof typeof Break];

/** An uncuttable span of the input: a word (with its trailing punctuation), or a slice of an overlong word. */
interface Unit {
  start: number;
  end: number;
  /** Tokens of the unit with the whitespace before it, an estimate of what it adds to a chunk. */
  tokens: number;
  /** The break between the previous unit and this one. */
  before: Break;
}

/** Scripts written without spaces between words: their runs are split with `Intl.Segmenter`. */
const UNSPACED =
  /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u;
/** A word ending a sentence: terminal punctuation, then closing quotes or brackets. */
const SENTENCE_END = /[.!?。！？…‼⁇⁈⁉؟।][\p{Pf}\p{Pe}"']*$/u;

let wordSegmenter: Intl.Segmenter | undefined;
let graphemeSegmenter: Intl.Segmenter | undefined;

/**
 * Splits a whitespace-free piece into words. Pieces of unspaced scripts (Chinese, Japanese, Thai...) are cut
 * at the word boundaries of `Intl.Segmenter`; punctuation stays with the word before it.
 */
function wordsOf(piece: string, offset: number): Array<{ start: number; end: number }> {
  if (!UNSPACED.test(piece)) return [{ start: offset, end: offset + piece.length }];
  wordSegmenter ??= new Intl.Segmenter('und', { granularity: 'word' });
  const words: Array<{ start: number; end: number }> = [];
  for (const segment of wordSegmenter.segment(piece)) {
    const start = offset + segment.index;
    const end = start + segment.segment.length;
    const last = words.at(-1);
    if (last && !segment.isWordLike) last.end = end;
    else words.push({ start, end });
  }
  return words;
}

/**
 * Cuts a word longer than `maxTokens` into slices of at most `maxTokens` tokens, at grapheme boundaries (an
 * emoji or a letter with its marks is never cut; a single grapheme over the limit stays whole).
 */
function sliceOverlongWord(text: string, start: number, end: number, maxTokens: number): Unit[] {
  graphemeSegmenter ??= new Intl.Segmenter('und', { granularity: 'grapheme' });
  const bounds: number[] = [];
  for (const segment of graphemeSegmenter.segment(text.slice(start, end))) bounds.push(start + segment.index);
  bounds.push(end);
  const units: Unit[] = [];
  let from = 0; // index into bounds
  while (from < bounds.length - 1) {
    const fits = (to: number) => countTokens(text.slice(bounds[from], bounds[to])) <= maxTokens;
    // Exponential then binary search for the last grapheme boundary that keeps the slice within the limit.
    let lo = from + 1;
    let hi = Math.min(bounds.length - 1, from + maxTokens);
    while (hi < bounds.length - 1 && fits(hi)) {
      lo = hi;
      hi = Math.min(bounds.length - 1, from + (hi - from) * 2);
    }
    if (fits(hi)) lo = hi;
    else {
      while (hi - lo > 1) {
        const mid = (lo + hi) >>> 1;
        if (fits(mid)) lo = mid;
        else hi = mid;
      }
    }
    const sliceStart = bounds[from]!;
    const sliceEnd = bounds[lo]!;
    units.push({
      start: sliceStart,
      end: sliceEnd,
      tokens: countTokens(text.slice(sliceStart, sliceEnd)),
      before: Break.None,
    });
    from = lo;
  }
  return units;
}

/** The break a whitespace gap (and the word before it) makes. */
function breakOf(gap: string, previousWord: string): Break {
  if (/\n[^\S\n]*\n/.test(gap)) return Break.Paragraph;
  if (gap.includes('\n') || SENTENCE_END.test(previousWord)) return Break.Sentence;
  return Break.Word;
}

/** The input as a sequence of units, each at most `maxTokens` tokens on its own. */
function unitsOf(text: string, maxTokens: number): Unit[] {
  const units: Unit[] = [];
  let previousEnd = -1;
  for (const match of text.matchAll(/\S+/gu)) {
    const pieceStart = match.index;
    const gap = previousEnd < 0 ? '' : text.slice(previousEnd, pieceStart);
    const gapBreak =
      previousEnd < 0 ? Break.Paragraph : breakOf(gap, text.slice(units.at(-1)!.start, previousEnd));
    let first = true;
    for (const word of wordsOf(match[0], pieceStart)) {
      let before: Break = first ? gapBreak : Break.Word;
      if (!first && SENTENCE_END.test(text.slice(units.at(-1)!.start, word.start))) before = Break.Sentence;
      const lead = first ? gap : '';
      first = false;
      // A UTF-16 code unit is at most 3 UTF-8 bytes and a token at least one byte: short words need no count.
      const length = word.end - word.start;
      const alone = length * 3 <= maxTokens ? 0 : countTokens(text.slice(word.start, word.end));
      if (alone > maxTokens) {
        const slices = sliceOverlongWord(text, word.start, word.end, maxTokens);
        slices[0]!.before = before;
        units.push(...slices);
        continue;
      }
      const tokens = countTokens(lead + text.slice(word.start, word.end));
      units.push({ start: word.start, end: word.end, tokens, before });
    }
    previousEnd = pieceStart + match[0].length;
  }
  return units;
}

/**
 * Where the chunk starting at unit `first` should end (index of its last unit, inclusive), given `last`, the
 * furthest unit that fits: the last of the strongest breaks found in the chunk's second half, so that a chunk
 * ends at a paragraph, else a sentence, else a word boundary, without getting much shorter than the limit. It
 * never ends at or before `floor`, the previous chunk's last unit.
 */
function preferredEnd(units: Unit[], first: number, last: number, floor: number, maxTokens: number): number {
  if (last + 1 >= units.length) return last; // the text's end is the strongest break
  let best = last;
  let bestBreak = units[last + 1]!.before;
  let tokens = 0;
  for (let i = last; i > first && i - 1 > floor; i--) {
    tokens += units[i]!.tokens;
    if (tokens > maxTokens / 2) break;
    const strength = units[i]!.before;
    if (strength > bestBreak) {
      bestBreak = strength;
      best = i - 1;
    }
  }
  return best;
}

/**
 * Splits a text into chunks of at most `maxTokens` tokens (`cl100k_base`) for embedding. Chunks end at
 * paragraph breaks where they can, else at sentence ends, else between words; a word is cut only when it alone
 * exceeds `maxTokens` (and then at grapheme boundaries: with a tiny `maxTokens`, one grapheme such as a long
 * emoji sequence may alone exceed it and stays whole). Consecutive chunks share about `overlapTokens` tokens
 * of whole words, so a passage cut in two is still found whole in one of them. Deterministic; a text with no
 * visible characters gives `[]`.
 */
export function chunkText(text: string, options: ChunkOptions = {}): Chunk[] {
  const maxTokens = options.maxTokens ?? DEFAULT_CHUNK_MAX_TOKENS;
  const overlapTokens = options.overlapTokens ?? DEFAULT_CHUNK_OVERLAP_TOKENS;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new RangeError(`chunkText: maxTokens must be a positive integer, got ${maxTokens}`);
  }
  if (!Number.isInteger(overlapTokens) || overlapTokens < 0 || overlapTokens >= maxTokens) {
    throw new RangeError(
      `chunkText: overlapTokens must be an integer from 0 to maxTokens - 1 (${maxTokens - 1}), got ${overlapTokens}`,
    );
  }
  const units = unitsOf(text, maxTokens);
  const chunks: Chunk[] = [];
  let first = 0;
  let previousLast = -1;
  while (first < units.length) {
    // Furthest unit that fits by the estimate, then the preferred break, then the exact count (shrinking when
    // tokens merge differently across units than alone).
    let last = first;
    let estimate = units[first]!.tokens;
    while (last + 1 < units.length && estimate + units[last + 1]!.tokens <= maxTokens) {
      last += 1;
      estimate += units[last]!.tokens;
    }
    last = preferredEnd(units, first, last, previousLast, maxTokens);
    let chunkTextValue = text.slice(units[first]!.start, units[last]!.end);
    let tokens = countTokens(chunkTextValue);
    while (tokens > maxTokens && last > first) {
      last -= 1;
      chunkTextValue = text.slice(units[first]!.start, units[last]!.end);
      tokens = countTokens(chunkTextValue);
    }
    if (last <= previousLast) {
      // The overlap left no room for anything new: start later.
      first += 1;
      continue;
    }
    chunks.push({
      index: chunks.length,
      text: chunkTextValue,
      tokens,
      start: units[first]!.start,
      end: units[last]!.end,
    });
    if (last + 1 >= units.length) break;
    previousLast = last;
    first = overlapStart(units, first, last, overlapTokens);
  }
  return chunks;
}

/** The first unit of the next chunk: the chunk's tail of about `overlapTokens` tokens, after `first`. */
function overlapStart(units: Unit[], first: number, last: number, overlapTokens: number): number {
  let start = last + 1;
  let tokens = 0;
  while (start - 1 > first && tokens + units[start - 1]!.tokens <= overlapTokens) {
    start -= 1;
    tokens += units[start]!.tokens;
  }
  return start;
}
