import { Tiktoken } from 'js-tiktoken/lite';
import cl100kBase from 'js-tiktoken/ranks/cl100k_base';
import { describe, expect, it } from 'vitest';
import { type Chunk, chunkText, countTokens } from '../../src/knowledge/chunker.js';

const SENTENCES = [
  'The quick brown fox jumps over the lazy dog.',
  'Sphinx of black quartz, judge my vow!',
  'How vexingly quick daft zebras jump?',
  'Pack my box with five dozen liquor jugs.',
  'The five boxing wizards jump quickly.',
];

/** A deterministic text of `paragraphs` paragraphs of `sentences` sentences each, numbered so no two match. */
function prose(paragraphs: number, sentences: number): string {
  return Array.from({ length: paragraphs }, (_, p) =>
    Array.from({ length: sentences }, (_, s) => `(${p}.${s}) ${SENTENCES[(p + s) % SENTENCES.length]}`).join(
      ' ',
    ),
  ).join('\n\n');
}

/** The invariants every chunking holds: limits, offsets, order, coverage of every visible character. */
function expectWellFormed(text: string, chunks: Chunk[], maxTokens: number): void {
  chunks.forEach((chunk, i) => {
    expect(chunk.index).toBe(i);
    expect(text.slice(chunk.start, chunk.end)).toBe(chunk.text);
    expect(chunk.text).toBe(chunk.text.trim());
    expect(chunk.tokens).toBe(countTokens(chunk.text));
    expect(chunk.tokens).toBeLessThanOrEqual(maxTokens);
    if (i > 0) {
      const previous = chunks[i - 1]!;
      expect(chunk.start).toBeGreaterThan(previous.start);
      expect(chunk.end).toBeGreaterThan(previous.end);
      // No visible character falls between two chunks.
      expect(chunk.start <= previous.end || text.slice(previous.end, chunk.start).trim() === '').toBe(true);
    }
  });
  expect(chunks[0]?.start).toBe(text.search(/\S/));
  expect(chunks.at(-1)?.end).toBe(text.trimEnd().length);
}

/** Words of a text, to tell whether a chunk boundary cut one. */
const isWordBoundary = (text: string, offset: number) =>
  offset === 0 || offset === text.length || /\s/.test(text[offset - 1]!) || /\s/.test(text[offset]!);

describe('countTokens', () => {
  it('counts exactly what cl100k_base encodes, special-token strings as text', () => {
    const reference = new Tiktoken(cl100kBase);
    const texts = [
      '',
      'hello world',
      prose(3, 4),
      "It's   spaced\t\tout\n\n\n  and\r\nwindows lines, numbers 1234567 and 3.14159!!",
      '我们今天去公园散步。今日は晴れています。안녕하세요 세계',
      '👨‍👩‍👧‍👦 🎉🎉 naïve café — “quotes” <|endoftext|> <|fim_prefix|>',
      'x'.repeat(500),
      `${'word '.repeat(300)}\n`,
    ];
    for (const text of texts) expect(countTokens(text)).toBe(reference.encode(text, [], []).length);
  });
});

describe('chunkText', () => {
  it('gives no chunk for an empty or blank text', () => {
    expect(chunkText('')).toEqual([]);
    expect(chunkText(' \n\n\t  \r\n ')).toEqual([]);
  });

  it('gives a short text as one chunk, trimmed, with its offsets', () => {
    const text = '\n  A short note about lunch.  \n';
    expect(chunkText(text)).toEqual([
      {
        index: 0,
        text: 'A short note about lunch.',
        tokens: countTokens('A short note about lunch.'),
        start: 3,
        end: 28,
      },
    ]);
  });

  it('keeps every chunk within maxTokens, cuts no word, and maps offsets back to the input', () => {
    const text = prose(12, 8);
    for (const [maxTokens, overlapTokens] of [
      [400, 60],
      [100, 20],
      [40, 0],
    ] as const) {
      const chunks = chunkText(text, { maxTokens, overlapTokens });
      expect(chunks.length).toBeGreaterThan(1);
      expectWellFormed(text, chunks, maxTokens);
      for (const chunk of chunks) {
        expect(isWordBoundary(text, chunk.start)).toBe(true);
        expect(isWordBoundary(text, chunk.end)).toBe(true);
      }
    }
  });

  it('overlaps consecutive chunks by about overlapTokens', () => {
    const text = prose(10, 8);
    const chunks = chunkText(text, { maxTokens: 120, overlapTokens: 30 });
    expect(chunks.length).toBeGreaterThan(3);
    for (let i = 1; i < chunks.length; i++) {
      const shared = text.slice(chunks[i]!.start, chunks[i - 1]!.end);
      expect(chunks[i]!.start).toBeLessThan(chunks[i - 1]!.end);
      expect(countTokens(shared)).toBeGreaterThan(10);
      expect(countTokens(shared)).toBeLessThanOrEqual(36);
    }
    // Without overlap, chunks follow each other.
    const apart = chunkText(text, { maxTokens: 120, overlapTokens: 0 });
    for (let i = 1; i < apart.length; i++) expect(apart[i]!.start).toBeGreaterThanOrEqual(apart[i - 1]!.end);
  });

  it('ends chunks at paragraph breaks, else at sentence ends, when one is near the limit', () => {
    const text = prose(8, 3); // paragraphs of ~40 tokens
    const chunks = chunkText(text, { maxTokens: 100, overlapTokens: 0 });
    for (const chunk of chunks.slice(0, -1)) expect(text.slice(chunk.end, chunk.end + 2)).toBe('\n\n');

    const oneParagraph = prose(1, 40);
    for (const chunk of chunkText(oneParagraph, { maxTokens: 100, overlapTokens: 0 }).slice(0, -1)) {
      expect(chunk.text).toMatch(/[.!?]$/);
    }
  });

  it('is deterministic', () => {
    const text = prose(6, 10);
    expect(chunkText(text, { maxTokens: 80, overlapTokens: 15 })).toEqual(
      chunkText(text, { maxTokens: 80, overlapTokens: 15 }),
    );
  });

  it('splits Chinese and Japanese text without spaces at sentence ends and word boundaries', () => {
    const text =
      '我们今天去公园散步。天气非常好，阳光明媚！孩子们在草地上玩耍，老人们在树下下棋。'.repeat(20) +
      '\n\n' +
      '今日は晴れています。公園で散歩をしました。桜がとても綺麗でした。'.repeat(20);
    const chunks = chunkText(text, { maxTokens: 60, overlapTokens: 10 });
    expect(chunks.length).toBeGreaterThan(5);
    expectWellFormed(text, chunks, 60);
    const sentenceEnds = chunks.slice(0, -1).filter((chunk) => /[。！]$/.test(chunk.text));
    expect(sentenceEnds.length).toBeGreaterThan(chunks.length / 2);
  });

  it('never cuts an emoji, even inside a word longer than a chunk', () => {
    const family = '👨‍👩‍👧‍👦';
    const text = `Party ${'🎉'.repeat(50)} ${family.repeat(30)}${'x'.repeat(300)} done`;
    const chunks = chunkText(text, { maxTokens: 20, overlapTokens: 5 });
    expectWellFormed(text, chunks, 20);
    const graphemes = new Intl.Segmenter('und', { granularity: 'grapheme' });
    const boundaries = new Set([...graphemes.segment(text)].map((segment) => segment.index));
    boundaries.add(text.length);
    for (const chunk of chunks) {
      expect(boundaries.has(chunk.start)).toBe(true);
      expect(boundaries.has(chunk.end)).toBe(true);
    }
  });

  it('cuts a word only when it alone exceeds maxTokens', () => {
    const long = 'a1b2c3d4e5'.repeat(200);
    const text = `before ${long} after`;
    const chunks = chunkText(text, { maxTokens: 50, overlapTokens: 0 });
    expectWellFormed(text, chunks, 50);
    expect(chunks.map((chunk) => chunk.text.replace(/ /g, '')).join('')).toBe(text.replace(/ /g, ''));
    const inside = chunks.filter((chunk) => chunk.start > 7 && chunk.end < text.length - 6);
    expect(inside.length).toBeGreaterThan(3);
  });

  it('chunks a 1 MB text within the limits', () => {
    let text = '';
    for (let i = 0; text.length < 1_000_000; i++) {
      text += `${SENTENCES[i % SENTENCES.length]} Item ${i} of the archive. ${i % 9 === 8 ? '\n\n' : ''}`;
    }
    const chunks = chunkText(text);
    expect(chunks.length).toBeGreaterThan(500);
    expect(Math.max(...chunks.map((chunk) => chunk.tokens))).toBeLessThanOrEqual(400);
    expect(chunks.at(-1)!.end).toBe(text.trimEnd().length);
    for (const chunk of chunks) expect(text.slice(chunk.start, chunk.end)).toBe(chunk.text);
  });

  it('rejects impossible options', () => {
    expect(() => chunkText('text', { maxTokens: 0 })).toThrow(/maxTokens/);
    expect(() => chunkText('text', { maxTokens: 10, overlapTokens: 10 })).toThrow(/overlapTokens/);
    expect(() => chunkText('text', { maxTokens: 10.5 })).toThrow(/maxTokens/);
  });
});
