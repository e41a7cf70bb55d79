// Knowledge indexing and search on sqlite-vec, with generated text:
//   npx tsx --conditions=aiva-source subgraphs/ai/bench/vectors.bench.ts
// Environment: BENCH_SIZES (comma-separated vector counts, default 10000,100000), BENCH_OWNERS (default 100),
// BENCH_QUERIES (default 500). Prints indexing throughput (chunk + lexical embed + upsert, one source per
// upsert as the indexer will do), search latency percentiles with the owner filter on, RSS and file size.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chunkText } from '../src/knowledge/chunker.js';
import { LexicalEmbedder } from '../src/knowledge/lexical-embedder.js';
import { openSqliteVecStore } from '../src/knowledge/sqlite-vec.js';
import type { VectorPoint } from '../src/knowledge/vector-store.js';

const SIZES = (process.env.BENCH_SIZES ?? '10000,100000').split(',').map(Number);
const OWNERS = Number(process.env.BENCH_OWNERS ?? 100);
const QUERIES = Number(process.env.BENCH_QUERIES ?? 500);

/** mulberry32: a small seeded PRNG, so every run indexes the same text. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = prng(42);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const between = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));

const SYLLABLES = [
  'ka',
  'lo',
  'mi',
  'ne',
  'ru',
  'sa',
  'to',
  'vi',
  'ze',
  'qu',
  'ar',
  'en',
  'is',
  'om',
  'ul',
  'tha',
];
/** 5,000 pseudo-words, the first few hundred drawn far more often (a rough Zipf curve). */
const VOCABULARY = Array.from({ length: 5000 }, () =>
  Array.from({ length: between(1, 4) }, () => pick(SYLLABLES)).join(''),
);
const word = () => VOCABULARY[Math.floor(VOCABULARY.length * random() ** 3)]!;
const sentence = () => {
  const words = Array.from({ length: between(6, 22) }, word);
  words[0] = words[0]!.charAt(0).toUpperCase() + words[0]!.slice(1);
  return `${words.join(' ')}${pick(['.', '.', '.', '?', '!'])}`;
};
const paragraph = () => Array.from({ length: between(2, 7) }, sentence).join(' ');
/** A note of 2 to 12 paragraphs (about 100 to 2,000 tokens). */
const documentText = () => Array.from({ length: between(2, 12) }, paragraph).join('\n\n');

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const ms = (value: number) => `${value.toFixed(2)} ms`;

async function run(target: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'aiva-vectors-bench-'));
  const file = join(dir, 'vectors.sqlite');
  const store = openSqliteVecStore({ file });
  const embedder = new LexicalEmbedder();
  try {
    const collection = await store.collection(embedder.model, embedder.dimensions);
    const owners = Array.from({ length: OWNERS }, () => randomUUID());
    const samples: Array<{ ownerId: string; text: string }> = [];
    let indexed = 0;
    let sources = 0;
    let chunkMs = 0;
    let embedMs = 0;
    let upsertMs = 0;
    while (indexed < target) {
      const text = documentText();
      const ownerId = owners[sources % OWNERS]!;
      const sourceId = randomUUID();
      let t = performance.now();
      const chunks = chunkText(text).slice(0, target - indexed);
      chunkMs += performance.now() - t;
      t = performance.now();
      const vectors = await embedder.embed(chunks.map((chunk) => chunk.text));
      embedMs += performance.now() - t;
      const points: VectorPoint[] = chunks.map((chunk, i) => ({
        id: randomUUID(),
        vector: vectors[i]!,
        payload: {
          ownerId,
          sourceType: 'note',
          sourceId,
          title: `Note ${sources}`,
          chunkIndex: chunk.index,
          text: chunk.text,
        },
      }));
      t = performance.now();
      await collection.upsert(points);
      upsertMs += performance.now() - t;
      if (samples.length < QUERIES && random() < 0.2) samples.push({ ownerId, text: paragraph() });
      indexed += chunks.length;
      sources += 1;
    }
    const totalMs = chunkMs + embedMs + upsertMs;
    const rssAfterIndex = process.memoryUsage().rss;

    // Queries: new paragraphs in the corpus's vocabulary, embedded first (not timed), each searched once.
    while (samples.length < QUERIES) samples.push({ ownerId: pick(owners), text: paragraph() });
    const queryVectors = await embedder.embed(samples.map((sample) => sample.text));
    const latencies: number[] = [];
    let hits = 0;
    for (let i = 0; i < samples.length; i++) {
      const t = performance.now();
      const found = await collection.search(queryVectors[i]!, { ownerId: samples[i]!.ownerId, limit: 10 });
      latencies.push(performance.now() - t);
      hits += found.length;
    }
    latencies.sort((a, b) => a - b);

    console.log(
      `\n== sqlite-vec, ${indexed} vectors x ${embedder.dimensions} dims, ${OWNERS} owners, ${sources} sources`,
    );
    console.log(
      `indexing: ${((indexed / totalMs) * 1000).toFixed(0)} chunks/s ` +
        `(chunk ${((chunkMs / totalMs) * 100).toFixed(0)}%, embed ${((embedMs / totalMs) * 100).toFixed(0)}%, ` +
        `upsert ${((upsertMs / totalMs) * 100).toFixed(0)}%; ${(totalMs / 1000).toFixed(1)} s)`,
    );
    console.log(
      `search (k=10, owner filter, ${latencies.length} queries): p50 ${ms(percentile(latencies, 50))}, ` +
        `p99 ${ms(percentile(latencies, 99))}, max ${ms(latencies.at(-1)!)}, ${(hits / latencies.length).toFixed(1)} hits/query`,
    );
    console.log(
      `memory: rss ${mb(rssAfterIndex)} after indexing, ${mb(process.memoryUsage().rss)} after search; ` +
        `database ${mb(statSync(file).size)} (+ WAL)`,
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`node ${process.versions.node}, ${process.platform}/${process.arch}`);
for (const size of SIZES) await run(size);
