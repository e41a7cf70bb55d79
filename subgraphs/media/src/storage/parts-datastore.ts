import { Readable, Transform, type TransformCallback } from 'node:stream';
import { DataStore, ERRORS, Upload } from '@tus/server';
import { type FileStorage, type ListedObject, StorageNotFoundError } from './storage.js';

// A tus datastore that needs nothing but the FileStorage port, so it runs on every adapter (a local directory,
// AWS S3, or an S3-compatible server lacking ListParts/AbortMultipartUpload, such as s3rver). Layout, under
// `<prefix>/<id>/` in the storage (prefix `uploads` by default):
//   info.json              {"id","size","metadata","creation_date"} — written once by `create`
//   0000000000000000       the body of the PATCH that started at offset 0
//   0000000000262144       the body of the PATCH that started at offset 262144, …
// Each PATCH body becomes one part object through `storage.put`, which is atomic: a body that errors mid-way
// leaves no part. Note that @tus/server (2.4) does not error the body when the client disconnects: it ends it
// gracefully, so the part then holds the prefix that did arrive and the offset moves to its end (tus's own
// semantics, as with FileStore); either way the client resumes from the offset HEAD reports. The offset is never stored: it is the length of the chain of contiguous parts from offset 0,
// found by listing the upload's prefix. A part that does not continue the chain (a leftover of a lost race
// between two instances, or anything past the declared size) is ignored by `getUpload` and `read` and removed
// with the upload; the next PATCH at the chain's end simply writes its own part.

/** Digits of a part's name: the offset, zero-padded so that key order is offset order (16 digits ≈ 9 PB). */
const OFFSET_DIGITS = 16;
const PART_NAME = /^\d{16}$/;
const INFO_NAME = 'info.json';
const INFO_CONTENT_TYPE = 'application/json';
const PART_CONTENT_TYPE = 'application/octet-stream';

/** Upload ids are one key segment (uuids in practice); anything else is answered as an unknown upload. */
const UPLOAD_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

/** True when `id` can name a staged upload (one safe path/key segment, at most 200 characters). */
export function isValidUploadId(id: string): boolean {
  return typeof id === 'string' && UPLOAD_ID.test(id) && !id.includes('..');
}

/** Options of `PartsDataStore`. */
export interface PartsDataStoreOptions {
  /** The key prefix of the staging area inside the storage; default `uploads`. */
  prefix?: string;
}

/** What `info.json` holds: everything about an upload but its offset, which the parts tell. */
interface StoredInfo {
  id: string;
  size: number;
  metadata: Record<string, string | null>;
  creation_date: string;
}

/** A part of the contiguous chain: where it starts in the upload, its key and size. */
interface ChainPart {
  offset: number;
  key: string;
  size: number;
}

/** The name of a part object: its start offset, zero-padded. */
export function partNameOf(offset: number): string {
  return String(offset).padStart(OFFSET_DIGITS, '0');
}

/**
 * The parts that continue each other from offset 0 (each starting where the previous ended), up to `size` bytes;
 * `listed` must be sorted by key (as `FileStorage.list` returns it). Anything else is a leftover and is skipped.
 */
export function contiguousParts(listed: ListedObject[], uploadPrefix: string, size: number): ChainPart[] {
  const chain: ChainPart[] = [];
  let next = 0;
  for (const object of listed) {
    const name = object.key.slice(uploadPrefix.length + 1);
    if (!PART_NAME.test(name)) continue;
    const offset = Number(name);
    if (offset !== next || object.size === 0 || next + object.size > size) continue;
    chain.push({ offset, key: object.key, size: object.size });
    next += object.size;
  }
  return chain;
}

/** Thrown inside a part's stream when the body goes past the upload's declared size. */
class PartTooLargeError extends Error {
  readonly status_code = ERRORS.ERR_SIZE_EXCEEDED.status_code;
  readonly body = ERRORS.ERR_SIZE_EXCEEDED.body;
  constructor(limit: number) {
    super(`The PATCH body is longer than the ${limit} bytes the upload still expects`);
    this.name = 'PartTooLargeError';
  }
}

/** Counts the bytes of a part and fails (PartTooLargeError) as soon as they exceed `limit`. */
class PartLimiter extends Transform {
  bytes = 0;
  exceeded = false;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      this.exceeded = true;
      callback(new PartTooLargeError(this.limit));
      return;
    }
    callback(null, chunk);
  }
}

function isStoredInfo(value: unknown): value is StoredInfo {
  const info = value as Partial<StoredInfo> | null;
  return (
    typeof info === 'object' &&
    info !== null &&
    typeof info.id === 'string' &&
    Number.isSafeInteger(info.size) &&
    (info.size ?? -1) >= 0 &&
    typeof info.metadata === 'object' &&
    info.metadata !== null &&
    typeof info.creation_date === 'string'
  );
}

async function readText(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A tus DataStore keeping each upload as an info object plus one part object per PATCH in a FileStorage (see the
 * layout above), using only put/get/list/deletePrefix — plain PutObject, GetObject, ListObjectsV2 and
 * DeleteObjects on S3. Supports the tus `creation` (uploads are created server-side with a known size) and
 * `termination` extensions; deferred lengths are refused. Every instance of the service sharing the storage sees
 * the same uploads, so a client may resume on another instance.
 */
export class PartsDataStore extends DataStore {
  readonly storage: FileStorage;
  /** The staging prefix inside the storage, without a trailing `/`. */
  readonly prefix: string;

  constructor(storage: FileStorage, options: PartsDataStoreOptions = {}) {
    super();
    this.storage = storage;
    this.prefix = (options.prefix ?? 'uploads').replace(/\/+$/, '');
    if (!this.prefix) throw new Error('A parts datastore needs a non-empty key prefix');
    this.extensions = ['creation', 'termination'];
  }

  /** The key prefix of one upload, `<prefix>/<id>`; an id that cannot be a key segment is an unknown upload. */
  uploadPrefixOf(id: string): string {
    // The tus error makes the server answer 404, as for any unknown upload.
    if (!isValidUploadId(id)) throw ERRORS.FILE_NOT_FOUND;
    return `${this.prefix}/${id}`;
  }

  /**
   * Records a new upload (its size must be known). Re-creating an existing id starts it afresh: its parts are
   * removed first, so no old bytes can count toward the new upload.
   */
  override async create(upload: Upload): Promise<Upload> {
    const uploadPrefix = this.uploadPrefixOf(upload.id);
    if (upload.size === undefined) throw ERRORS.UNSUPPORTED_CREATION_DEFER_LENGTH_EXTENSION;
    if (!Number.isSafeInteger(upload.size) || upload.size < 0) throw ERRORS.INVALID_LENGTH;
    const info: StoredInfo = {
      id: upload.id,
      size: upload.size,
      metadata: upload.metadata ?? {},
      creation_date: upload.creation_date ?? new Date().toISOString(),
    };
    await this.storage.deletePrefix(uploadPrefix);
    await this.storage.put(`${uploadPrefix}/${INFO_NAME}`, Buffer.from(JSON.stringify(info)), {
      contentType: INFO_CONTENT_TYPE,
    });
    upload.creation_date = info.creation_date;
    upload.offset = 0;
    upload.storage = { type: `parts-${this.storage.kind}`, path: uploadPrefix };
    return upload;
  }

  /**
   * Stores one PATCH body as the part starting at `offset` and returns the new offset. The body may not go past
   * the declared size (ERRORS.ERR_SIZE_EXCEEDED, nothing stored; the tus server's own limiter usually answers
   * 413 first); a body that errors stores nothing, so the offset stays where it was. An empty body stores nothing.
   */
  override async write(stream: Readable, id: string, offset: number): Promise<number> {
    const uploadPrefix = this.uploadPrefixOf(id);
    const info = await this.readInfo(uploadPrefix);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > info.size) throw ERRORS.INVALID_OFFSET;
    const key = `${uploadPrefix}/${partNameOf(offset)}`;
    const limiter = new PartLimiter(info.size - offset);
    // The failure reaches us through `put` (which reads the limiter); without a listener of our own, `pipe` would
    // re-throw the limiter's error as an uncaught exception once the reader has let go of it.
    limiter.on('error', () => undefined);
    stream.on('error', (error) => limiter.destroy(error));
    stream.pipe(limiter);
    try {
      await this.storage.put(key, limiter, { contentType: PART_CONTENT_TYPE });
    } catch (error) {
      stream.unpipe(limiter);
      if (limiter.exceeded) throw ERRORS.ERR_SIZE_EXCEEDED;
      throw error;
    }
    if (limiter.bytes === 0) await this.storage.delete(key);
    return offset + limiter.bytes;
  }

  /** The upload with its offset (the contiguous parts' length); ERRORS.FILE_NOT_FOUND when there is no info.json. */
  override async getUpload(id: string): Promise<Upload> {
    const uploadPrefix = this.uploadPrefixOf(id);
    const [info, listed] = await Promise.all([this.readInfo(uploadPrefix), this.storage.list(uploadPrefix)]);
    const chain = contiguousParts(listed, uploadPrefix, info.size);
    const offset = chain.reduce((sum, part) => sum + part.size, 0);
    return new Upload({
      id,
      size: info.size,
      offset,
      metadata: info.metadata,
      creation_date: info.creation_date,
      storage: { type: `parts-${this.storage.kind}`, path: uploadPrefix },
    });
  }

  /** Sizes are always known at creation: a deferred length cannot be declared. */
  override async declareUploadLength(_id: string, _length: number): Promise<void> {
    throw ERRORS.UNSUPPORTED_CREATION_DEFER_LENGTH_EXTENSION;
  }

  /**
   * The bytes received so far, from offset 0, as one stream (the contiguous parts one after the other, each
   * opened only when the previous one is done). ERRORS.FILE_NOT_FOUND when the upload does not exist.
   */
  async read(id: string): Promise<Readable> {
    const uploadPrefix = this.uploadPrefixOf(id);
    const [info, listed] = await Promise.all([this.readInfo(uploadPrefix), this.storage.list(uploadPrefix)]);
    const chain = contiguousParts(listed, uploadPrefix, info.size);
    const storage = this.storage;
    async function* concatenate(): AsyncGenerator<Buffer> {
      for (const part of chain) {
        const { body } = await storage.get(part.key);
        for await (const chunk of body) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      }
    }
    return Readable.from(concatenate(), { objectMode: false });
  }

  /** Removes the upload: everything under `<prefix>/<id>/`. ERRORS.FILE_NOT_FOUND when there was nothing. */
  override async remove(id: string): Promise<void> {
    const uploadPrefix = this.uploadPrefixOf(id);
    const removed = await this.storage.deletePrefix(uploadPrefix);
    if (removed === 0) throw ERRORS.FILE_NOT_FOUND;
  }

  /** The upload's info.json, ERRORS.FILE_NOT_FOUND when absent; a corrupt one is an explicit error. */
  private async readInfo(uploadPrefix: string): Promise<StoredInfo> {
    const key = `${uploadPrefix}/${INFO_NAME}`;
    let text: string;
    try {
      text = await readText((await this.storage.get(key)).body);
    } catch (error) {
      if (error instanceof StorageNotFoundError) throw ERRORS.FILE_NOT_FOUND;
      throw error;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new Error(`The tus upload record ${key} is not JSON`, { cause: error });
    }
    if (!isStoredInfo(parsed))
      throw new Error(`The tus upload record ${key} lacks id, size, metadata or creation_date`);
    return parsed;
  }
}
