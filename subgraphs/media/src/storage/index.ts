import { LocalFileStorage } from './local.js';
import { S3FileStorage } from './s3.js';
import type { FileStorage, StorageConfig } from './storage.js';

export * from './local.js';
export * from './s3.js';
export * from './storage.js';
export * from './tus-datastore.js';

/** The storage adapter a config asks for: a local directory or an S3 bucket. */
export function createStorage(config: StorageConfig): FileStorage {
  if (config.kind === 'local') return new LocalFileStorage({ root: config.root });
  return new S3FileStorage(config);
}
