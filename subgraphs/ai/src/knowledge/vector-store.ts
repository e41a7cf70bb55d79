import { createHash } from 'node:crypto';

/** What a stored chunk says about itself: enough to cite it and to delete it with its source. */
export interface ChunkPayload {
  /** The person whose knowledge this is: searches only ever see their own chunks. */
  ownerId: string;
  sourceType: 'note' | 'media';
  sourceId: string;
  title: string;
  /** The chunk's `index` in its source's text. */
  chunkIndex: number;
  text: string;
}

/** A chunk's vector with its payload. */
export interface VectorPoint {
  /** A UUID (Qdrant accepts no other string ids); upserting the same id replaces the point. */
  id: string;
  vector: Float32Array;
  payload: ChunkPayload;
}

/** A search result. */
export interface VectorHit {
  id: string;
  /** Cosine similarity to the query, from -1 to 1: higher is closer. */
  score: number;
  payload: ChunkPayload;
}

export interface VectorSearchOptions {
  /** Only this owner's chunks are searched: the filter is part of the query, never applied after it. */
  ownerId: string;
  /** At most this many hits (1 to {@link MAX_SEARCH_LIMIT}). */
  limit: number;
  /** Hits scoring below this are left out. */
  minScore?: number;
}

/** The vectors of one embedding model (name + dimensions). */
export interface VectorCollection {
  readonly model: string;
  readonly dimensions: number;
  /** Writes the points, replacing those with the same ids. Every vector must have `dimensions` values. */
  upsert(points: VectorPoint[]): Promise<void>;
  /**
   * The owner's nearest chunks, closest first. A zero query vector is near nothing and gives []; points stored
   * with a zero vector are never returned.
   */
  search(vector: Float32Array, options: VectorSearchOptions): Promise<VectorHit[]>;
  /** Removes the chunks of one source; returns how many there were. */
  deleteBySource(ownerId: string, sourceType: ChunkPayload['sourceType'], sourceId: string): Promise<number>;
  /** Removes all of an owner's chunks; returns how many there were. */
  deleteByOwner(ownerId: string): Promise<number>;
  /** Points in the collection, or the owner's only. */
  count(ownerId?: string): Promise<number>;
}

/** Where vectors are kept: sqlite-vec (embedded, the default) or a Qdrant server. */
export interface VectorStore {
  readonly kind: 'sqlite-vec' | 'qdrant';
  /** One collection per embedding model (name + dimensions): vectors of different models never mix. */
  collection(model: string, dimensions: number): Promise<VectorCollection>;
  /** Throws when the store cannot be used. */
  ping(): Promise<void>;
  /** Releases the store; calling it again is harmless. */
  close(): Promise<void>;
}

/** The most hits one search may ask for (sqlite-vec's KNN queries stop at 4096). */
export const MAX_SEARCH_LIMIT = 1000;

/** The sources a chunk can come from. */
export const CHUNK_SOURCE_TYPES: readonly ChunkPayload['sourceType'][] = ['note', 'media'];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A name for a model's collection, safe as an SQL identifier and a Qdrant collection name: the model slugged,
 * the dimensions, and a short hash of the exact model name (so `a/b` and `a-b` never share a collection).
 */
export function collectionSlug(model: string, dimensions: number): string {
  const slug =
    model
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, 40) || 'model';
  const hash = createHash('sha256').update(model).digest('hex').slice(0, 8);
  return `${slug}_${dimensions}_${hash}`;
}

/** Checks a collection's model and dimensions. */
export function assertCollectionSpec(model: string, dimensions: number): void {
  if (model.trim().length === 0) throw new TypeError('vector collection: the model name is empty');
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > 65_536) {
    throw new RangeError(
      `vector collection ${model}: dimensions must be an integer from 1 to 65536, got ${dimensions}`,
    );
  }
}

/** Checks that a vector fits the collection: right length, finite values. */
export function assertVector(vector: Float32Array, dimensions: number, model: string, what: string): void {
  if (!(vector instanceof Float32Array)) throw new TypeError(`${what}: the vector must be a Float32Array`);
  if (vector.length !== dimensions) {
    throw new RangeError(
      `${what}: vector has ${vector.length} dimensions but collection ${model} has ${dimensions}`,
    );
  }
  for (const value of vector) {
    if (!Number.isFinite(value)) throw new RangeError(`${what}: vector has a non-finite value (${value})`);
  }
}

/** True when every value is 0 (cosine similarity is undefined for it). */
export function isZeroVector(vector: Float32Array): boolean {
  return vector.every((value) => value === 0);
}

/** Checks points before a write: UUID ids (unique in the batch), fitting vectors, complete payloads. */
export function assertPoints(points: VectorPoint[], dimensions: number, model: string): void {
  const ids = new Set<string>();
  for (const point of points) {
    const what = `upsert into ${model}: point ${point.id}`;
    if (!UUID.test(point.id)) throw new TypeError(`upsert into ${model}: point id ${point.id} is not a UUID`);
    if (ids.has(point.id.toLowerCase())) throw new TypeError(`${what} appears twice in one upsert`);
    ids.add(point.id.toLowerCase());
    assertVector(point.vector, dimensions, model, what);
    const { payload } = point;
    if (!payload.ownerId) throw new TypeError(`${what}: payload.ownerId is empty`);
    if (!payload.sourceId) throw new TypeError(`${what}: payload.sourceId is empty`);
    if (!CHUNK_SOURCE_TYPES.includes(payload.sourceType)) {
      throw new TypeError(`${what}: payload.sourceType must be one of ${CHUNK_SOURCE_TYPES.join(', ')}`);
    }
    if (!Number.isInteger(payload.chunkIndex) || payload.chunkIndex < 0) {
      throw new TypeError(`${what}: payload.chunkIndex must be a non-negative integer`);
    }
  }
}

/** Checks search options. */
export function assertSearchOptions(options: VectorSearchOptions, model: string): void {
  if (!options.ownerId) throw new TypeError(`search in ${model}: ownerId is empty`);
  if (!Number.isInteger(options.limit) || options.limit < 1 || options.limit > MAX_SEARCH_LIMIT) {
    throw new RangeError(
      `search in ${model}: limit must be an integer from 1 to ${MAX_SEARCH_LIMIT}, got ${options.limit}`,
    );
  }
  if (options.minScore !== undefined && Number.isNaN(options.minScore)) {
    throw new RangeError(`search in ${model}: minScore is NaN`);
  }
}
