import { describe, expect, it } from 'vitest';
import {
  LEXICAL_DIMENSIONS,
  LEXICAL_MODEL,
  LexicalEmbedder,
  lexicalTerms,
} from '../../src/knowledge/lexical-embedder.js';

const dot = (a: Float32Array, b: Float32Array) => a.reduce((sum, value, i) => sum + value * b[i]!, 0);
const norm = (a: Float32Array) => Math.sqrt(dot(a, a));

const DOCUMENTS = [
  'Grandma’s apple pie recipe: butter, flour, sliced apples, cinnamon and a pinch of salt. Bake for 45 minutes.',
  'Quarterly tax filing checklist: invoices, receipts, VAT returns and the accountant’s deadline in April.',
  'Training log: ran 10 km along the river, average pace 5:30 per km, knee felt fine.',
  'Trip to Lisbon: tram 28, pastéis de nata in Belém, fado evening in Alfama.',
];

describe('LexicalEmbedder', () => {
  const embedder = new LexicalEmbedder();

  it('describes itself as a lexical model of 384 dimensions', () => {
    expect(embedder.model).toBe(LEXICAL_MODEL);
    expect(embedder.model).toBe('aiva-lexical-v1');
    expect(embedder.dimensions).toBe(LEXICAL_DIMENSIONS);
    expect(embedder.dimensions).toBe(384);
    expect(embedder.kind).toBe('lexical');
  });

  it('gives the same vectors on every call and from every instance', async () => {
    const first = await embedder.embed(DOCUMENTS);
    const again = await new LexicalEmbedder().embed([...DOCUMENTS].reverse());
    expect(again.reverse()).toEqual(first);
    // Pinned values: a change of features or hashing is a new model name, not a silent change.
    const [vector] = await embedder.embed(['hello world']);
    const nonZero = [...vector!.entries()]
      .filter(([, value]) => value !== 0)
      .map(([i, v]) => [i, Number(v.toFixed(4))]);
    expect(nonZero).toMatchInlineSnapshot(`
      [
        [
          32,
          0.6667,
        ],
        [
          95,
          0.3333,
        ],
        [
          180,
          0.6667,
        ],
      ]
    `);
  });

  it('returns unit vectors of the declared length, one per text, in order', async () => {
    const vectors = await embedder.embed(DOCUMENTS);
    expect(vectors).toHaveLength(DOCUMENTS.length);
    for (const vector of vectors) {
      expect(vector).toBeInstanceOf(Float32Array);
      expect(vector).toHaveLength(384);
      expect(norm(vector)).toBeCloseTo(1, 5);
    }
  });

  it('scores a query highest against the document that shares its words', async () => {
    const vectors = await embedder.embed(DOCUMENTS);
    const queries = ['apple pie with cinnamon', 'tax deadline receipts', 'river run pace', 'fado in Lisbon'];
    const [...queryVectors] = await embedder.embed(queries);
    queryVectors.forEach((query, expected) => {
      const scores = vectors.map((doc) => dot(query, doc));
      const best = scores.indexOf(Math.max(...scores));
      expect(best).toBe(expected);
      expect(scores[expected]).toBeGreaterThan(0.2);
    });
    // A text scores 1 with itself, and case, punctuation and plurals do not matter.
    const [a, b] = await embedder.embed(['Apple pies, sliced apples!', 'apple pie sliced apple']);
    expect(dot(a!, a!)).toBeCloseTo(1, 5);
    expect(dot(a!, b!)).toBeCloseTo(1, 5);
  });

  it('gives the zero vector, without NaN, for a text with no words', async () => {
    for (const text of ['', '   ', '!!! ... ???', '🎉🎉']) {
      const [vector] = await embedder.embed([text]);
      expect(vector).toHaveLength(384);
      expect(vector!.every((value) => value === 0)).toBe(true);
    }
  });

  it('handles Chinese and Japanese text character by character', async () => {
    expect(lexicalTerms('今日は晴れ')).toEqual(['今', '日', 'は', '晴', 'れ']);
    const [doc, related, unrelated] = await embedder.embed([
      '我们今天去公园散步',
      '公园散步',
      '股票市场分析',
    ]);
    expect(dot(doc!, related!)).toBeGreaterThan(dot(doc!, unrelated!));
  });

  it('folds case, Unicode forms and plurals into the same terms', () => {
    expect(lexicalTerms('Café NOTES, ｆｕｌｌ-width… class this')).toEqual([
      'café',
      'note',
      'full',
      'width',
      'class',
      'this',
    ]);
  });

  it('stops when the signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('request cancelled'));
    await expect(embedder.embed(['text'], controller.signal)).rejects.toThrow('request cancelled');
  });

  it('accepts another vector length', async () => {
    const small = new LexicalEmbedder({ dimensions: 64 });
    const [vector] = await small.embed(['a few words here']);
    expect(vector).toHaveLength(64);
    expect(norm(vector!)).toBeCloseTo(1, 5);
    expect(() => new LexicalEmbedder({ dimensions: 1 })).toThrow(/dimensions/);
  });
});
