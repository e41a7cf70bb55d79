import { type Readable, Transform } from 'node:stream';

// The storage port of the media service: where original files and processing outputs live, on a local
// directory or in an S3-compatible bucket. Keys are relative paths such as `owners/<uuid>/<sha256>/original`;
// they are validated before any adapter touches the disk or the network.

/** Which adapter backs a `FileStorage`. */
export type StorageKind = 'local' | 's3';

/** Configuration of the S3 adapter (AWS S3 or any S3-compatible server: MinIO, Ceph, R2, s3rver…). */
export interface S3StorageConfig {
  bucket: string;
  region: string;
  /** The endpoint of an S3-compatible server, e.g. `http://127.0.0.1:9000`; AWS when absent. */
  endpoint?: string;
  /** Static credentials; when both are absent the AWS SDK's default chain (env, profile, role) is used. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** `bucket` in the path rather than the host name; most S3-compatible servers need it. */
  forcePathStyle?: boolean;
  /** Prepended to every key (e.g. `media/` to share a bucket); a trailing `/` is added when missing. */
  prefix?: string;
}

/** Where files are kept: a local directory (`root`, e.g. `.data/media/files`) or an S3 bucket. */
export type StorageConfig = { kind: 'local'; root: string } | ({ kind: 's3' } & S3StorageConfig);

/** An inclusive byte range, as in an HTTP `Range: bytes=start-end` header. */
export interface ByteRange {
  start: number;
  end: number;
}

/** What `get` returns: the body, the whole object's size and type, and the range actually served. */
export interface StoredObject {
  body: Readable;
  /** The size of the whole object (not of the range), for `Content-Range: bytes s-e/<size>`. */
  size: number;
  contentType: string;
  /** The range the body holds, `end` clamped to the last byte; absent when the whole object is served. */
  range?: ByteRange;
}

/** Size and content type of a stored object. */
export interface ObjectInfo {
  size: number;
  contentType: string;
}

/** One object found by `list`: its key (relative, like every key) and size in bytes. */
export interface ListedObject {
  key: string;
  size: number;
}

/** Options of `put`/`putFile`. */
export interface PutOptions {
  contentType: string;
}

/**
 * The storage the media service writes files to and serves them from. Both adapters honour the same contract
 * (test/storage.contract.ts), so the service never needs to know which one it has.
 */
export interface FileStorage {
  readonly kind: StorageKind;
  /** Streams `body` to `key` (replacing it). Atomic: readers never see a partial file (local: temp file + rename). */
  put(key: string, body: Readable | Buffer, options: PutOptions): Promise<{ size: number }>;
  /** Copies a local file into storage (processing outputs); same semantics as put. */
  putFile(key: string, path: string, options: PutOptions): Promise<{ size: number }>;
  /**
   * A readable of the object, optionally a byte range (inclusive start/end; `end` past the last byte is
   * clamped); throws StorageNotFoundError when absent and StorageRangeError when `start` is past the end.
   */
  get(key: string, range?: ByteRange): Promise<StoredObject>;
  /** Size and type, or undefined when absent. */
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** Downloads the object to a local file path (processing reads local files); StorageNotFoundError when absent. */
  download(key: string, path: string): Promise<void>;
  /** Removes the object; an absent object is fine. */
  delete(key: string): Promise<void>;
  /** Removes every key under `prefix/` (not `prefix` itself, nor `prefix-other/…`); returns how many. */
  deletePrefix(prefix: string): Promise<number>;
  /**
   * Every object under `prefix/` (not `prefix` itself, nor `prefix-other/…`) with its size, sorted by key
   * (plain code-unit order); adapter bookkeeping (local sidecars and temp files) never appears. Lets callers
   * such as the tus parts store find what they stored without a database. Empty when nothing is there.
   */
  list(prefix: string): Promise<ListedObject[]>;
  /** Readiness: resolves when the storage can be used, throws when it cannot be reached. */
  ping(): Promise<void>;
  /** Releases connections; the storage is not used afterwards. */
  close(): Promise<void>;
}

/** The object asked for does not exist. Services turn it into NOT_FOUND. */
export class StorageNotFoundError extends Error {
  readonly key: string;
  constructor(key: string) {
    super(`No stored object at key "${key}"`);
    this.name = 'StorageNotFoundError';
    this.key = key;
  }
}

/** A key or prefix that is not allowed; thrown before the storage is touched. */
export class InvalidStorageKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidStorageKeyError';
  }
}

/** A byte range that cannot be served (start past the end of the object, or start > end). HTTP 416. */
export class StorageRangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StorageRangeError';
  }
}

/** Longest key accepted: well under S3's 1024 bytes so that an S3 `prefix` still fits. */
export const MAX_STORAGE_KEY_LENGTH = 512;

/** Content type stored when none is known. */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

const KEY_CHARACTERS = /^[A-Za-z0-9._/-]+$/;

/**
 * Throws InvalidStorageKeyError unless `key` is a safe relative key: only `[A-Za-z0-9._/-]`, at most
 * MAX_STORAGE_KEY_LENGTH characters, no leading or trailing `/`, no empty, `.` or `..` segment (so no key can
 * escape the local root or alias another key), no backslash.
 */
export function assertValidKey(key: string, what = 'storage key'): void {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidStorageKeyError(`The ${what} is empty`);
  if (key.length > MAX_STORAGE_KEY_LENGTH) {
    throw new InvalidStorageKeyError(
      `The ${what} is ${key.length} characters long; at most ${MAX_STORAGE_KEY_LENGTH} are allowed`,
    );
  }
  if (!KEY_CHARACTERS.test(key)) {
    throw new InvalidStorageKeyError(
      `The ${what} ${JSON.stringify(key)} has characters outside [A-Za-z0-9._/-]`,
    );
  }
  if (key.startsWith('/') || key.endsWith('/')) {
    throw new InvalidStorageKeyError(`The ${what} ${JSON.stringify(key)} starts or ends with "/"`);
  }
  for (const segment of key.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw new InvalidStorageKeyError(
        `The ${what} ${JSON.stringify(key)} has an empty, "." or ".." path segment`,
      );
    }
  }
}

/**
 * The validated form of a `deletePrefix` argument, without a trailing `/` (`owners/a1/` and `owners/a1` are
 * the same prefix). Throws InvalidStorageKeyError like `assertValidKey`.
 */
export function normalizePrefix(prefix: string): string {
  const trimmed = typeof prefix === 'string' && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  assertValidKey(trimmed, 'storage prefix');
  return trimmed;
}

/** Throws StorageRangeError unless `range` is two whole numbers with 0 <= start <= end. */
export function assertValidRange(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new StorageRangeError(
      `Invalid byte range ${start}-${end}: need whole numbers with 0 <= start <= end`,
    );
  }
}

/**
 * The range that can be served from an object of `size` bytes: `end` clamped to the last byte. Throws
 * StorageRangeError when `start` is at or past the end (as S3 answers 416).
 */
export function clampRange(range: ByteRange, size: number): ByteRange {
  assertValidRange(range);
  if (range.start >= size) {
    throw new StorageRangeError(
      `Byte range ${range.start}-${range.end} starts past the end of a ${size}-byte object`,
    );
  }
  return { start: range.start, end: Math.min(range.end, size - 1) };
}

/** A pass-through stream that counts the bytes flowing through it (`bytes`), for the size `put` returns. */
export class ByteCounter extends Transform {
  bytes = 0;
  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null, data?: Buffer) => void,
  ) {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}
