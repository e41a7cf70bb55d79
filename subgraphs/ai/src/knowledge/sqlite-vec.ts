import { openMigratedSqlite, type SqliteDatabase, sqliteStoreLifecycle } from '@aiva/shared';
import * as sqliteVec from 'sqlite-vec';
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
  type VectorPoint,
  type VectorSearchOptions,
  type VectorStore,
} from './vector-store.js';

export interface SqliteVecStoreOptions {
  /** Path of the database file (its directory is created when missing), or `':memory:'`. */
  file: string;
}

/**
 * The store's own schema (in `schema_migrations` under `ai.vectors`, so the file can be shared). The tables of
 * each collection are created when it is first opened, since they depend on the model's dimensions.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE vector_collections (
    slug       TEXT PRIMARY KEY NOT NULL,
    model      TEXT NOT NULL,
    dimensions INTEGER NOT NULL
  ) STRICT;
  `,
];

/**
 * Vectors per storage block of the vec0 index. sqlite-vec allocates whole blocks per partition (1024 vectors by
 * default: 1.5 MB per owner at 384 dimensions, however few chunks they have). Small blocks keep a light owner
 * small, and a KNN query still reads an owner's vectors block by block. Fixed when a collection's table is
 * created.
 */
const VEC_CHUNK_SIZE = 32;

/**
 * The tables of one collection. `vec_<slug>` is the sqlite-vec index: cosine distance, and `owner_id` as its
 * PARTITION KEY, so a KNN query with `owner_id = ?` only scans that owner's vectors (the owner filter is part of
 * the query, not applied to its results). `chunks_<slug>` holds the payloads under the same rowid. Points with a
 * zero vector have a payload row and no vector row: they count, and are never found.
 */
function collectionDdl(slug: string, dimensions: number): string {
  return `
  CREATE VIRTUAL TABLE IF NOT EXISTS "vec_${slug}" USING vec0(
    owner_id TEXT PARTITION KEY,
    embedding float[${dimensions}] distance_metric=cosine,
    chunk_size=${VEC_CHUNK_SIZE}
  );
  CREATE TABLE IF NOT EXISTS "chunks_${slug}" (
    rowid       INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    owner_id    TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    title       TEXT NOT NULL,
    chunk_index INTEGER NOT NULL,
    text        TEXT NOT NULL
  ) STRICT;
  CREATE INDEX IF NOT EXISTS "chunks_${slug}_source" ON "chunks_${slug}" (owner_id, source_type, source_id);
  `;
}

interface HitRow {
  distance: number | null;
  id: string;
  owner_id: string;
  source_type: ChunkPayload['sourceType'];
  source_id: string;
  title: string;
  chunk_index: number;
  text: string;
}

/** A vector as the BLOB sqlite-vec reads (little-endian float32, the platform's order on every target). */
function vectorBlob(vector: Float32Array): Buffer {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
}

function hitOf(row: HitRow): VectorHit {
  return {
    id: row.id,
    // sqlite-vec's cosine distance is 1 - cosine similarity.
    score: 1 - (row.distance ?? 1),
    payload: {
      ownerId: row.owner_id,
      sourceType: row.source_type,
      sourceId: row.source_id,
      title: row.title,
      chunkIndex: row.chunk_index,
      text: row.text,
    },
  };
}

/** A collection over its two tables, with its statements prepared once. */
function sqliteVecCollection(db: SqliteDatabase, model: string, dimensions: number): VectorCollection {
  const slug = collectionSlug(model, dimensions);
  db.transaction(() => {
    db.prepare('INSERT OR IGNORE INTO vector_collections (slug, model, dimensions) VALUES (?, ?, ?)').run(
      slug,
      model,
      dimensions,
    );
    db.exec(collectionDdl(slug, dimensions));
  }).immediate();

  const vec = `"vec_${slug}"`;
  const chunks = `"chunks_${slug}"`;
  const stmt = {
    rowidOf: db.prepare<[string], bigint>(`SELECT rowid FROM ${chunks} WHERE id = ?`).pluck().safeIntegers(),
    insertChunk: db
      .prepare<[string, string, string, string, string, number, string], bigint>(
        `INSERT INTO ${chunks} (id, owner_id, source_type, source_id, title, chunk_index, text)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING rowid`,
      )
      .pluck()
      .safeIntegers(),
    updateChunk: db.prepare<[string, string, string, string, number, string, bigint]>(
      `UPDATE ${chunks} SET owner_id = ?, source_type = ?, source_id = ?, title = ?, chunk_index = ?, text = ?
       WHERE rowid = ?`,
    ),
    // sqlite-vec wants its rowids bound as integers: BigInt, as better-sqlite3 binds other numbers as REAL.
    deleteVector: db.prepare<[bigint]>(`DELETE FROM ${vec} WHERE rowid = ?`),
    insertVector: db.prepare<[bigint, string, Buffer]>(
      `INSERT INTO ${vec} (rowid, owner_id, embedding) VALUES (?, ?, ?)`,
    ),
    search: db.prepare<[Buffer, number, string], HitRow>(
      `WITH knn AS (
         SELECT rowid, distance FROM ${vec} WHERE embedding MATCH ? AND k = ? AND owner_id = ?
       )
       SELECT knn.distance, c.id, c.owner_id, c.source_type, c.source_id, c.title, c.chunk_index, c.text
       FROM knn JOIN ${chunks} c ON c.rowid = knn.rowid
       ORDER BY knn.distance, c.id`,
    ),
    sourceRowids: db
      .prepare<[string, string, string], bigint>(
        `SELECT rowid FROM ${chunks} WHERE owner_id = ? AND source_type = ? AND source_id = ?`,
      )
      .pluck()
      .safeIntegers(),
    ownerRowids: db
      .prepare<[string], bigint>(`SELECT rowid FROM ${chunks} WHERE owner_id = ?`)
      .pluck()
      .safeIntegers(),
    deleteChunk: db.prepare<[bigint]>(`DELETE FROM ${chunks} WHERE rowid = ?`),
    countAll: db.prepare<[], number>(`SELECT count(*) FROM ${chunks}`).pluck(),
    countOwner: db.prepare<[string], number>(`SELECT count(*) FROM ${chunks} WHERE owner_id = ?`).pluck(),
  };

  const writePoint = (point: VectorPoint) => {
    const id = point.id.toLowerCase();
    const { ownerId, sourceType, sourceId, title, chunkIndex, text } = point.payload;
    let rowid = stmt.rowidOf.get(id);
    if (rowid === undefined) {
      rowid = stmt.insertChunk.get(id, ownerId, sourceType, sourceId, title, chunkIndex, text)!;
    } else {
      // The owner (the partition) may change: the vector row is replaced, not updated.
      stmt.deleteVector.run(rowid);
      stmt.updateChunk.run(ownerId, sourceType, sourceId, title, chunkIndex, text, rowid);
    }
    if (!isZeroVector(point.vector)) stmt.insertVector.run(rowid, ownerId, vectorBlob(point.vector));
  };
  const upsertAll = db.transaction((points: VectorPoint[]) => {
    for (const point of points) writePoint(point);
  });
  const deleteRows = db.transaction((rowids: bigint[]) => {
    for (const rowid of rowids) {
      stmt.deleteVector.run(rowid);
      stmt.deleteChunk.run(rowid);
    }
    return rowids.length;
  });

  return {
    model,
    dimensions,
    async upsert(points) {
      assertPoints(points, dimensions, model);
      if (points.length > 0) upsertAll.immediate(points);
    },
    async search(vector, options: VectorSearchOptions) {
      assertVector(vector, dimensions, model, `search in ${model}`);
      assertSearchOptions(options, model);
      if (isZeroVector(vector)) return [];
      const minScore = options.minScore ?? Number.NEGATIVE_INFINITY;
      return stmt.search
        .all(vectorBlob(vector), options.limit, options.ownerId)
        .filter((row) => row.distance !== null)
        .map(hitOf)
        .filter((hit) => hit.score >= minScore);
    },
    async deleteBySource(ownerId, sourceType, sourceId) {
      return deleteRows.immediate(stmt.sourceRowids.all(ownerId, sourceType, sourceId));
    },
    async deleteByOwner(ownerId) {
      return deleteRows.immediate(stmt.ownerRowids.all(ownerId));
    },
    async count(ownerId) {
      return ownerId === undefined ? stmt.countAll.get()! : stmt.countOwner.get(ownerId)!;
    },
  };
}

/**
 * Opens (creating when needed) an embedded vector store: SQLite with the sqlite-vec extension (exact KNN,
 * brute force within the owner's partition), in its own file or in a file shared with other AIVA tables.
 */
export function openSqliteVecStore(options: SqliteVecStoreOptions): VectorStore {
  const db = openMigratedSqlite(options.file, {
    component: 'ai.vectors',
    migrations: MIGRATIONS,
    label: 'ai vector store',
  });
  try {
    sqliteVec.load(db);
  } catch (error) {
    db.close();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`Could not load the sqlite-vec extension: ${reason}`);
  }
  const lifecycle = sqliteStoreLifecycle(db);
  const collections = new Map<string, VectorCollection>();
  return {
    kind: 'sqlite-vec',
    async collection(model, dimensions) {
      assertCollectionSpec(model, dimensions);
      const slug = collectionSlug(model, dimensions);
      let collection = collections.get(slug);
      if (!collection) {
        collection = sqliteVecCollection(db, model, dimensions);
        collections.set(slug, collection);
      }
      return collection;
    },
    ping: lifecycle.ping,
    close: lifecycle.close,
  };
}
