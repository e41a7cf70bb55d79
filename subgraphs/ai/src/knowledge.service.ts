import { randomUUID } from 'node:crypto';
import { type Logger, uuidv7 } from '@aiva/shared';
import {
  type ChunkPayload,
  chunkText,
  type Embedder,
  type VectorHit,
  type VectorPoint,
  type VectorStore,
} from './knowledge/index.js';
import type { AiModels } from './providers/index.js';
import type { AiStore, Capability, DocumentRecord } from './store/ai.store.js';

/** Vectors of texts and the model (and size) they belong to. */
export interface EmbeddedTexts {
  vectors: Float32Array[];
  model: string;
  dimensions: number;
  tokens: number;
}

/** Makes vectors: a configured provider's embedding model, or the local embedder. */
export type EmbedTexts = (texts: string[], signal?: AbortSignal) => Promise<EmbeddedTexts>;

/** The embedding model configured with the providers (AI_EMBEDDING_MODELS), through the call policy. */
export function providerEmbedder(models: AiModels): EmbedTexts {
  return async (texts, signal) => {
    const result = await models.embed(texts, signal);
    return {
      vectors: result.vectors,
      model: result.model,
      dimensions: result.dimensions,
      tokens: result.usage.tokens,
    };
  };
}

/** A local embedder (the lexical default, or an ONNX model directory). */
export function localEmbedder(embedder: Embedder): EmbedTexts {
  return async (texts, signal) => ({
    vectors: await embedder.embed(texts, signal),
    model: embedder.model,
    dimensions: embedder.dimensions,
    tokens: 0,
  });
}

export interface KnowledgeServiceOptions {
  store: AiStore;
  vectors: VectorStore;
  embed: EmbedTexts;
  /** Counts a person's use of a capability (tokens), refusing when their quota is spent. */
  meter: (ownerId: string, capability: Capability, tokens: number) => Promise<void>;
  /** Texts embedded per request. */
  batchSize?: number;
  logger?: Logger;
}

/** One hit of a search, with its source. */
export interface KnowledgeHit {
  score: number;
  text: string;
  chunkIndex: number;
  title: string;
  sourceType: ChunkPayload['sourceType'];
  sourceId: string;
}

const toHit = (hit: VectorHit): KnowledgeHit => ({
  score: hit.score,
  text: hit.payload.text,
  chunkIndex: hit.payload.chunkIndex,
  title: hit.payload.title,
  sourceType: hit.payload.sourceType,
  sourceId: hit.payload.sourceId,
});

/**
 * A person's knowledge: texts (notes, a PDF's extracted text) chunked by tokens, embedded and kept in the vector
 * store under their owner; searched by meaning (or by words with the lexical embedder), never across owners.
 * Indexing a source again replaces its chunks.
 */
export class KnowledgeService {
  constructor(private readonly options: KnowledgeServiceOptions) {}

  /** Indexes a note of the person; its id is new. */
  indexNote(ownerId: string, title: string, text: string): Promise<DocumentRecord> {
    return this.index(ownerId, 'note', uuidv7(), title, text);
  }

  /** Chunks, embeds and stores `text` as the source's knowledge, replacing what it had. */
  async index(
    ownerId: string,
    sourceType: ChunkPayload['sourceType'],
    sourceId: string,
    title: string,
    text: string,
    signal?: AbortSignal,
  ): Promise<DocumentRecord> {
    const { store, vectors, logger } = this.options;
    const chunks = chunkText(text);
    const batch = this.options.batchSize ?? 64;
    const previous = await store.findDocument(ownerId, sourceType, sourceId);
    let model = previous?.embeddingModel ?? '';
    let dimensions = previous?.dimensions ?? 0;
    const points: VectorPoint[] = [];
    let tokens = 0;
    for (let i = 0; i < chunks.length; i += batch) {
      const slice = chunks.slice(i, i + batch);
      const embedded = await this.options.embed(
        slice.map((c) => c.text),
        signal,
      );
      if (points.length > 0 && embedded.model !== model) {
        throw new Error('the embedding model changed while indexing one text (a fallback); index it again');
      }
      model = embedded.model;
      dimensions = embedded.dimensions;
      tokens += embedded.tokens;
      slice.forEach((chunk, j) => {
        const vector = embedded.vectors[j];
        if (!vector) return;
        points.push({
          id: randomUUID(),
          vector,
          payload: { ownerId, sourceType, sourceId, title, chunkIndex: chunk.index, text: chunk.text },
        });
      });
    }
    if (tokens > 0) await this.options.meter(ownerId, 'embedding', tokens);
    // The old chunks go (from the collection they were made in), then the new ones come.
    if (previous) {
      const old = await vectors.collection(previous.embeddingModel, previous.dimensions);
      await old.deleteBySource(ownerId, sourceType, sourceId);
    }
    if (points.length > 0) await (await vectors.collection(model, dimensions)).upsert(points);
    const record = await store.saveDocument({
      id: previous?.id ?? uuidv7(),
      ownerId,
      sourceType,
      sourceId,
      title,
      chunkCount: points.length,
      embeddingModel: model || 'none',
      dimensions,
      createdAt: new Date(),
    });
    logger?.info({ ownerId, sourceType, sourceId, chunks: points.length, model }, 'knowledge indexed');
    return record;
  }

  /** The person's chunks nearest to `query`, closest first. */
  async search(ownerId: string, query: string, limit: number, signal?: AbortSignal): Promise<KnowledgeHit[]> {
    const embedded = await this.options.embed([query], signal);
    if (embedded.tokens > 0) await this.options.meter(ownerId, 'embedding', embedded.tokens);
    const [vector] = embedded.vectors;
    if (!vector) return [];
    const collection = await this.options.vectors.collection(embedded.model, embedded.dimensions);
    return (await collection.search(vector, { ownerId, limit })).map(toHit);
  }

  /** Removes a source from the person's knowledge; the removed document, or null. */
  async remove(
    ownerId: string,
    sourceType: ChunkPayload['sourceType'],
    sourceId: string,
  ): Promise<DocumentRecord | null> {
    const removed = await this.options.store.removeDocument(ownerId, sourceType, sourceId);
    if (removed && removed.chunkCount > 0) {
      const collection = await this.options.vectors.collection(removed.embeddingModel, removed.dimensions);
      await collection.deleteBySource(ownerId, sourceType, sourceId);
    }
    return removed;
  }

  /** Removes every chunk of a person, in every collection their documents were made in. */
  async removeOwner(ownerId: string): Promise<void> {
    const seen = new Set<string>();
    for (;;) {
      const page = await this.options.store.listDocuments(ownerId, { first: 100 });
      for (const doc of page.items) {
        const key = `${doc.embeddingModel}#${doc.dimensions}`;
        if (!seen.has(key) && doc.chunkCount > 0) {
          seen.add(key);
          await (await this.options.vectors.collection(doc.embeddingModel, doc.dimensions)).deleteByOwner(
            ownerId,
          );
        }
        await this.options.store.removeDocument(ownerId, doc.sourceType, doc.sourceId);
      }
      if (!page.hasNextPage) return;
    }
  }
}
