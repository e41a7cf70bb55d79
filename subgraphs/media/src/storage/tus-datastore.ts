import { mkdirSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { PRIVATE_DIR_MODE } from '@aiva/shared';
import { FileStore } from '@tus/file-store';
import { ERRORS, type Upload } from '@tus/server';
import { isValidUploadId, PartsDataStore } from './parts-datastore.js';
import { S3FileStorage } from './s3.js';
import { type FileStorage, type StorageConfig, StorageNotFoundError } from './storage.js';

export {
  contiguousParts,
  isValidUploadId,
  PartsDataStore,
  type PartsDataStoreOptions,
  partNameOf,
} from './parts-datastore.js';

// The staging area of resumable (tus) uploads. It must be shared by every instance of the media service, since a
// client may resume on another instance than the one it started on: a directory beside the local storage root
// (FileStore), or the same bucket under `uploads/` (PartsDataStore over the S3 storage: one object per PATCH,
// plain S3 calls only, so it also runs on S3-compatible servers without ListParts/AbortMultipartUpload). The
// integrator pre-creates an upload with `datastore.create(new Upload({ id, size, offset: 0, metadata }))`,
// clients HEAD/PATCH `/media/uploads/<id>`, and once complete `openStagedUpload` reads the bytes and removes the
// staging.

/** Options of `createTusDatastore`. */
export interface TusDatastoreOptions {
  /** Local storage: the shared staging directory, e.g. `<local root>/../uploads` (created 0700). Required then. */
  stagingDir?: string;
  /**
   * S3: the storage the staged parts go to (keys under `uploads/`); by default a new S3FileStorage of the same
   * config. Pass the service's own storage to share its connections.
   */
  storage?: FileStorage;
  /**
   * Local storage only (FileStore): uploads left unfinished this long may be removed by
   * `datastore.deleteExpired()`; 0 (default) = never. The S3 parts store has no expiration.
   */
  expirationPeriodInMilliseconds?: number;
}

/** The tus datastores `createTusDatastore` returns; both can read a finished upload back (`read(id)`). */
export type TusDatastore = FileStore | PartsDataStore;

/**
 * The tus datastore matching the storage: a FileStore in `options.stagingDir` for local storage, a PartsDataStore
 * (same bucket and credentials, keys under `<prefix>uploads/`) for S3. Give it to `new Server({ path, datastore })`.
 */
export function createTusDatastore(config: StorageConfig, options: TusDatastoreOptions = {}): TusDatastore {
  if (config.kind === 's3') return new PartsDataStore(options.storage ?? new S3FileStorage(config));
  if (!options.stagingDir) throw new Error('A tus datastore for local storage needs options.stagingDir');
  // FileStore creates its directory asynchronously and throws out of a callback on failure: create it here.
  mkdirSync(options.stagingDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  return new FileStore({
    directory: options.stagingDir,
    ...(options.expirationPeriodInMilliseconds
      ? { expirationPeriodInMilliseconds: options.expirationPeriodInMilliseconds }
      : {}),
  });
}

/** An upload in the staging area, as `openStagedUpload` gives it. */
export interface StagedUpload {
  id: string;
  /** The declared size; undefined while it is deferred. */
  size: number | undefined;
  /** Bytes received so far. */
  offset: number;
  /** All bytes received (`offset === size`). */
  complete: boolean;
  metadata: Record<string, string | null>;
  /** The staged file when the staging is a local directory (FileStore); undefined on S3. */
  path?: string;
  /** The bytes of the finished upload, from the start; throws when the upload is not complete. */
  stream(): Promise<Readable>;
  /** Removes the staged bytes and the upload's record; an already removed upload is fine. */
  remove(): Promise<void>;
}

function isTusNotFound(error: unknown): boolean {
  const status = (error as { status_code?: number } | undefined)?.status_code;
  return status === 404 || status === 410;
}

/**
 * The staged upload `uploadId` of a datastore made by `createTusDatastore`, to stream its bytes once (sniff,
 * hash, `storage.put`) and remove it afterwards. Throws StorageNotFoundError when there is no such upload.
 */
export async function openStagedUpload(datastore: TusDatastore, uploadId: string): Promise<StagedUpload> {
  let upload: Upload;
  try {
    if (!isValidUploadId(uploadId)) throw ERRORS.FILE_NOT_FOUND;
    upload = await datastore.getUpload(uploadId);
  } catch (error) {
    if (isTusNotFound(error)) throw new StorageNotFoundError(`uploads/${uploadId}`);
    throw error;
  }
  const complete = upload.size !== undefined && upload.offset === upload.size;
  return {
    id: uploadId,
    size: upload.size,
    offset: upload.offset,
    complete,
    metadata: upload.metadata ?? {},
    ...(datastore instanceof FileStore && upload.storage?.path ? { path: upload.storage.path } : {}),
    async stream() {
      if (!complete) {
        throw new Error(
          `Upload ${uploadId} is not complete: ${upload.offset} of ${upload.size ?? 'an unknown number of'} bytes received`,
        );
      }
      return datastore.read(uploadId);
    },
    async remove() {
      try {
        await datastore.remove(uploadId);
      } catch (error) {
        if (!isTusNotFound(error)) throw error;
      }
    },
  };
}
