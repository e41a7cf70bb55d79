import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat as statFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errorMessage, PRIVATE_FILE_MODE } from '@aiva/shared';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  assertValidKey,
  assertValidRange,
  ByteCounter,
  type ByteRange,
  clampRange,
  DEFAULT_CONTENT_TYPE,
  type FileStorage,
  type ListedObject,
  normalizePrefix,
  type ObjectInfo,
  type PutOptions,
  type S3StorageConfig,
  StorageNotFoundError,
  StorageRangeError,
  type StoredObject,
} from './storage.js';

/** Parts of a multipart `put`: S3's minimum (5 MiB), so that a body just over it already goes multipart. */
const PART_SIZE = 5 * 1024 * 1024;
/** Parts uploaded at the same time by one `put`. */
const PART_QUEUE_SIZE = 4;
/** DeleteObjects takes at most 1000 keys. */
const DELETE_BATCH = 1000;

/** The S3 client options shared by the storage and the tus datastore (same credentials, endpoint, style). */
export function s3ClientConfigOf(config: S3StorageConfig): S3ClientConfig {
  if (!config.bucket) throw new Error('S3 storage needs a bucket');
  if (!config.region) throw new Error('S3 storage needs a region');
  if (Boolean(config.accessKeyId) !== Boolean(config.secretAccessKey)) {
    throw new Error('S3 storage needs both accessKeyId and secretAccessKey, or neither');
  }
  return {
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    forcePathStyle: config.forcePathStyle ?? false,
    ...(config.accessKeyId && config.secretAccessKey
      ? { credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey } }
      : {}),
    // S3-compatible servers often do not understand the SDK's default flexible checksums (aws-chunked bodies
    // with trailing CRC32): checksums are only sent where the API requires them.
    ...(config.endpoint
      ? { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }
      : {}),
  };
}

/** The key prefix of a config, `''` or ending in `/`, validated like a key. */
export function s3KeyPrefixOf(config: S3StorageConfig): string {
  if (!config.prefix) return '';
  return `${normalizePrefix(config.prefix)}/`;
}

/** The name, HTTP status and message of an AWS SDK error, never its request (which may carry credentials). */
interface AwsErrorShape {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

function awsErrorName(error: unknown): string | undefined {
  const shape = error as AwsErrorShape | undefined;
  return shape?.name ?? shape?.Code;
}

function isNotFound(error: unknown): boolean {
  const name = awsErrorName(error);
  if (name === 'NoSuchKey' || name === 'NotFound') return true;
  return (error as AwsErrorShape | undefined)?.$metadata?.httpStatusCode === 404 && name !== 'NoSuchBucket';
}

function isInvalidRange(error: unknown): boolean {
  return (
    awsErrorName(error) === 'InvalidRange' ||
    (error as AwsErrorShape | undefined)?.$metadata?.httpStatusCode === 416
  );
}

/** `bytes 0-9/1234` → 1234 */
function totalFromContentRange(contentRange: string | undefined): number | undefined {
  const match = /\/(\d+)$/.exec(contentRange ?? '');
  return match?.[1] ? Number(match[1]) : undefined;
}

/** The first `count` bytes of `source`; the rest is not read (the source is destroyed). */
function firstBytes(source: Readable, count: number): Readable {
  async function* take(): AsyncGenerator<Buffer> {
    let left = count;
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (left <= 0) break;
      const part = chunk.subarray(0, left);
      left -= part.length;
      yield part;
      if (left <= 0) break;
    }
  }
  return Readable.from(take());
}

/**
 * Objects in an S3 bucket. `put` streams through lib-storage's `Upload` (multipart from 5 MiB on), which S3
 * makes visible only once complete, so readers never see a partial object.
 */
export class S3FileStorage implements FileStorage {
  readonly kind = 's3' as const;
  readonly bucket: string;
  readonly keyPrefix: string;
  private readonly client: S3Client;

  constructor(config: S3StorageConfig) {
    this.client = new S3Client(s3ClientConfigOf(config));
    this.bucket = config.bucket;
    this.keyPrefix = s3KeyPrefixOf(config);
  }

  async put(key: string, body: Readable | Buffer, options: PutOptions): Promise<{ size: number }> {
    const Key = this.objectKey(key);
    let counted: ByteCounter | undefined;
    let Body: Readable | Buffer = body;
    if (!Buffer.isBuffer(body)) {
      counted = new ByteCounter();
      body.on('error', (error) => counted?.destroy(error));
      Body = body.pipe(counted);
    }
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body, ContentType: options.contentType || DEFAULT_CONTENT_TYPE },
      partSize: PART_SIZE,
      queueSize: PART_QUEUE_SIZE,
      leavePartsOnError: false,
    });
    try {
      await this.run(`put ${key}`, () => upload.done());
    } catch (error) {
      if (!Buffer.isBuffer(body)) body.destroy();
      throw error;
    }
    return { size: counted ? counted.bytes : (body as Buffer).length };
  }

  async putFile(key: string, path: string, options: PutOptions): Promise<{ size: number }> {
    assertValidKey(key);
    const { size } = await statFile(path);
    await this.put(key, createReadStream(path), options);
    return { size };
  }

  async get(key: string, range?: ByteRange): Promise<StoredObject> {
    const Key = this.objectKey(key);
    if (range) assertValidRange(range);
    try {
      const output = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key,
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      );
      const body = output.Body as Readable;
      const length = output.ContentLength ?? 0;
      const contentType = output.ContentType ?? DEFAULT_CONTENT_TYPE;
      if (!range) return { body, size: length, contentType };
      const size = totalFromContentRange(output.ContentRange) ?? length;
      let served: ByteRange;
      try {
        served = clampRange(range, size);
      } catch (error) {
        body.destroy();
        throw error;
      }
      const servedLength = served.end - served.start + 1;
      // Some S3-compatible servers (s3rver) read `bytes=0-0` as open-ended: never hand out more than asked.
      const limited = length > servedLength ? firstBytes(body, servedLength) : body;
      return { body: limited, size, contentType, range: served };
    } catch (error) {
      if (isNotFound(error)) throw new StorageNotFoundError(key);
      if (isInvalidRange(error)) {
        throw new StorageRangeError(`Byte range ${range?.start}-${range?.end} is past the end of "${key}"`);
      }
      throw this.wrap(`get ${key}`, error);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const Key = this.objectKey(key);
    try {
      const output = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return { size: output.ContentLength ?? 0, contentType: output.ContentType ?? DEFAULT_CONTENT_TYPE };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.wrap(`stat ${key}`, error);
    }
  }

  async download(key: string, path: string): Promise<void> {
    const { body } = await this.get(key);
    try {
      await pipeline(body, createWriteStream(path, { mode: PRIVATE_FILE_MODE }));
    } catch (error) {
      await rm(path, { force: true });
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    const Key = this.objectKey(key);
    await this.run(`delete ${key}`, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key })),
    );
  }

  async deletePrefix(prefix: string): Promise<number> {
    const listed = `${this.keyPrefix}${normalizePrefix(prefix)}/`;
    let deleted = 0;
    let token: string | undefined;
    do {
      const page = await this.run(`list ${prefix}/`, () =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: listed, ContinuationToken: token }),
        ),
      );
      const keys = (page.Contents ?? []).map((object) => object.Key).filter((key): key is string => !!key);
      for (let i = 0; i < keys.length; i += DELETE_BATCH) {
        deleted += await this.deleteBatch(keys.slice(i, i + DELETE_BATCH));
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return deleted;
  }

  async list(prefix: string): Promise<ListedObject[]> {
    const listed = `${this.keyPrefix}${normalizePrefix(prefix)}/`;
    const objects: ListedObject[] = [];
    let token: string | undefined;
    do {
      const page = await this.run(`list ${prefix}/`, () =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: listed, ContinuationToken: token }),
        ),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key?.startsWith(listed)) {
          objects.push({ key: object.Key.slice(this.keyPrefix.length), size: object.Size ?? 0 });
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async ping(): Promise<void> {
    await this.run('reach the bucket', () =>
      this.client.send(new HeadBucketCommand({ Bucket: this.bucket })),
    );
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private async deleteBatch(keys: string[]): Promise<number> {
    const output = await this.run(`delete ${keys.length} objects`, () =>
      this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: false },
        }),
      ),
    );
    const failed = output.Errors ?? [];
    if (failed.length > 0) {
      const first = failed[0];
      throw new Error(
        `S3 storage (bucket ${this.bucket}): ${failed.length} of ${keys.length} deletions failed, e.g. ${first?.Key}: ${first?.Code} ${first?.Message ?? ''}`.trim(),
      );
    }
    return output.Deleted?.length ?? keys.length;
  }

  private objectKey(key: string): string {
    assertValidKey(key);
    return `${this.keyPrefix}${key}`;
  }

  private async run<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.wrap(what, error);
    }
  }

  /** An error naming the operation, bucket and S3 error code, never the credentials or signed request. */
  private wrap(what: string, error: unknown): Error {
    const name = awsErrorName(error);
    const status = (error as AwsErrorShape | undefined)?.$metadata?.httpStatusCode;
    const detail = [name, status ? `HTTP ${status}` : undefined].filter(Boolean).join(', ');
    return new Error(
      `S3 storage (bucket ${this.bucket}) could not ${what}: ${errorMessage(error)}${detail ? ` (${detail})` : ''}`,
      {
        cause: error,
      },
    );
  }
}
