import { QdrantClient } from '@qdrant/js-client-rest';
import {
  assertCollectionSpec,
  assertPoints,
  assertSearchOptions,
  assertVector,
  type ChunkPayload,
  collectionSlug,
  isZeroVector,
  type VectorCollection,
  type VectorHit,
  type VectorStore,
} from './vector-store.js';

export interface QdrantStoreOptions {
  /** The server, e.g. `http://127.0.0.1:6333`. */
  url: string;
  /** Sent as the `api-key` header; never logged or put in an error message. */
  apiKey?: string;
  /** Prepended to every collection name, so several deployments (or test runs) can share a server. */
  collectionPrefix?: string;
  /** Request timeout in milliseconds (default 10 000). */
  timeoutMs?: number;
}

/**
 * Payload flag of points stored with a zero vector. Qdrant would score them 0 against any query; the port says
 * they are never found, so searches exclude them.
 */
const EMPTY_VECTOR = 'emptyVector';

/** The condition selecting one owner's points: put in the query itself, never applied to its results. */
function ownerFilter(ownerId: string) {
  return { must: [{ key: 'ownerId', match: { value: ownerId } }] };
}

/** The owner's points that have a vector: the filter of every search. */
function searchFilter(ownerId: string) {
  return { ...ownerFilter(ownerId), must_not: [{ key: EMPTY_VECTOR, match: { value: true } }] };
}

function sourceFilter(ownerId: string, sourceType: ChunkPayload['sourceType'], sourceId: string) {
  return {
    must: [
      { key: 'ownerId', match: { value: ownerId } },
      { key: 'sourceType', match: { value: sourceType } },
      { key: 'sourceId', match: { value: sourceId } },
    ],
  };
}

/** Runs a client call, naming the operation in its error (the client's messages carry no credentials). */
async function call<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`Qdrant ${operation} failed: ${reason}`, { cause: error });
  }
}

/** HTTP 409 from create: another instance created it first. */
function isConflict(error: unknown): boolean {
  const status = (error as { status?: unknown } | null)?.status;
  return status === 409 || (error instanceof Error && /already exists/i.test(error.message));
}

function payloadOf(value: unknown): ChunkPayload {
  const payload = (value ?? {}) as Partial<ChunkPayload>;
  return {
    ownerId: String(payload.ownerId ?? ''),
    sourceType: payload.sourceType === 'media' ? 'media' : 'note',
    sourceId: String(payload.sourceId ?? ''),
    title: String(payload.title ?? ''),
    chunkIndex: Number(payload.chunkIndex ?? 0),
    text: String(payload.text ?? ''),
  };
}

/** Creates the collection (cosine) unless it exists, and its payload indexes; checks its vector size. */
async function ensureCollection(client: QdrantClient, name: string, dimensions: number): Promise<void> {
  const { exists } = await call(`collectionExists(${name})`, () => client.collectionExists(name));
  if (!exists) {
    try {
      await client.createCollection(name, { vectors: { size: dimensions, distance: 'Cosine' } });
    } catch (error) {
      if (!isConflict(error)) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(`Qdrant createCollection(${name}) failed: ${reason}`, { cause: error });
      }
    }
  }
  // Created every time (creating an existing index is a no-op): an instance stopped between the collection and
  // its indexes leaves none. Owners are tenants: Qdrant keeps each one's points together and filters on them first.
  await call(`createPayloadIndex(${name}, ownerId)`, () =>
    client.createPayloadIndex(name, {
      field_name: 'ownerId',
      field_schema: { type: 'keyword', is_tenant: true },
      wait: true,
    }),
  );
  for (const [field, schema] of [
    ['sourceType', 'keyword'],
    ['sourceId', 'keyword'],
    [EMPTY_VECTOR, 'bool'],
  ] as const) {
    await call(`createPayloadIndex(${name}, ${field})`, () =>
      client.createPayloadIndex(name, { field_name: field, field_schema: schema, wait: true }),
    );
  }
  const info = await call(`getCollection(${name})`, () => client.getCollection(name));
  const vectors = info.config.params.vectors as { size?: number; distance?: string } | undefined;
  if (vectors?.size !== dimensions || vectors.distance !== 'Cosine') {
    throw new Error(
      `Qdrant collection ${name} holds ${vectors?.distance ?? 'unnamed'} vectors of ${vectors?.size ?? '?'} ` +
        `dimensions, expected Cosine of ${dimensions}`,
    );
  }
}

function qdrantCollection(
  client: QdrantClient,
  name: string,
  model: string,
  dimensions: number,
): VectorCollection {
  const countWhere = async (filter?: ReturnType<typeof ownerFilter>) =>
    (await call(`count(${name})`, () => client.count(name, { filter, exact: true }))).count;
  /** Counts then deletes (two requests: a point written in between may be removed without being counted). */
  const deleteWhere = async (filter: ReturnType<typeof ownerFilter>) => {
    const removed = await countWhere(filter);
    if (removed > 0) await call(`delete(${name})`, () => client.delete(name, { filter, wait: true }));
    return removed;
  };
  return {
    model,
    dimensions,
    async upsert(points) {
      assertPoints(points, dimensions, model);
      if (points.length === 0) return;
      await call(`upsert(${name})`, () =>
        client.upsert(name, {
          wait: true,
          points: points.map((point) => ({
            id: point.id.toLowerCase(),
            vector: Array.from(point.vector),
            payload: isZeroVector(point.vector)
              ? { ...point.payload, [EMPTY_VECTOR]: true }
              : { ...point.payload },
          })),
        }),
      );
    },
    async search(vector, options) {
      assertVector(vector, dimensions, model, `search in ${model}`);
      assertSearchOptions(options, model);
      if (isZeroVector(vector)) return [];
      const result = await call(`query(${name})`, () =>
        client.query(name, {
          query: Array.from(vector),
          filter: searchFilter(options.ownerId),
          limit: options.limit,
          score_threshold: options.minScore,
          with_payload: true,
        }),
      );
      return result.points
        .filter((point) => Number.isFinite(point.score))
        .map(
          (point): VectorHit => ({
            id: String(point.id),
            score: point.score,
            payload: payloadOf(point.payload),
          }),
        );
    },
    deleteBySource: (ownerId, sourceType, sourceId) =>
      deleteWhere(sourceFilter(ownerId, sourceType, sourceId)),
    deleteByOwner: (ownerId) => deleteWhere(ownerFilter(ownerId)),
    count: (ownerId) => countWhere(ownerId === undefined ? undefined : ownerFilter(ownerId)),
  };
}

/**
 * A vector store on a Qdrant server: one collection per model (named from the model and dimensions, cosine
 * distance), `ownerId` indexed as the tenant key and every search filtered on it inside the query. Point ids are
 * the chunk ids (UUIDs) as they are. The server keeps everything; `close` only forgets the client.
 */
export function createQdrantStore(options: QdrantStoreOptions): VectorStore {
  const client = new QdrantClient({
    url: options.url,
    apiKey: options.apiKey,
    timeout: options.timeoutMs ?? 10_000,
    checkCompatibility: false,
  });
  const prefix = options.collectionPrefix ?? 'aiva_';
  const collections = new Map<string, Promise<VectorCollection>>();
  return {
    kind: 'qdrant',
    async collection(model, dimensions) {
      assertCollectionSpec(model, dimensions);
      const name = `${prefix}${collectionSlug(model, dimensions)}`;
      let collection = collections.get(name);
      if (!collection) {
        collection = ensureCollection(client, name, dimensions).then(() =>
          qdrantCollection(client, name, model, dimensions),
        );
        // A failed creation is retried by the next call.
        collection.catch(() => collections.delete(name));
        collections.set(name, collection);
      }
      return collection;
    },
    async ping() {
      await call('ping', () => client.getCollections());
    },
    async close() {
      collections.clear();
    },
  };
}
