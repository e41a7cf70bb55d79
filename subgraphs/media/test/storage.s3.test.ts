import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type S3TestServer, startS3Server } from '../../../tests/helpers/s3-server.js';
import { createStorage, S3FileStorage } from '../src/storage/index.js';
import { storageContract } from './storage.contract.js';

let server: S3TestServer;

beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  await server?.stop();
});

/** Each test gets its own key prefix in the bucket, removed afterwards. */
storageContract(
  'S3 (s3rver)',
  async () => {
    const prefix = `run-${randomBytes(6).toString('hex')}`;
    const config = {
      kind: 's3' as const,
      bucket: server.bucket,
      region: 'us-east-1',
      endpoint: server.endpoint,
      accessKeyId: server.accessKeyId,
      secretAccessKey: server.secretAccessKey,
      forcePathStyle: true,
      prefix,
    };
    return {
      storage: createStorage(config),
      async cleanup() {
        const admin = new S3FileStorage({ ...config, prefix: undefined });
        await admin.deletePrefix(prefix);
        await admin.close();
      },
    };
  },
  {
    noAtomicPuts:
      's3rver writes an object in place, so concurrent PUTs of one key interleave there; S3 replaces objects atomically',
  },
);

describe('S3FileStorage specifics', () => {
  it('fails ping for a missing bucket without showing the credentials', async () => {
    const storage = new S3FileStorage({
      bucket: 'no-such-bucket',
      region: 'us-east-1',
      endpoint: server.endpoint,
      accessKeyId: server.accessKeyId,
      secretAccessKey: 'SECRET-VALUE-NOT-SHOWN',
      forcePathStyle: true,
    });
    try {
      const error = await storage.ping().then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error).toBeInstanceOf(Error);
      expect(error?.message).toMatch(/no-such-bucket/);
      expect(error?.message).not.toMatch(/SECRET-VALUE-NOT-SHOWN/);
    } finally {
      await storage.close();
    }
  });

  it('keeps keys under the configured prefix', async () => {
    const base = {
      bucket: server.bucket,
      region: 'us-east-1',
      endpoint: server.endpoint,
      forcePathStyle: true,
    };
    const creds = { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey };
    const prefixed = new S3FileStorage({ ...base, ...creds, prefix: 'tenant-x/' });
    const whole = new S3FileStorage({ ...base, ...creds });
    try {
      await prefixed.put('text/a.txt', Buffer.from('a'), { contentType: 'text/plain' });
      await expect(whole.stat('tenant-x/text/a.txt')).resolves.toEqual({
        size: 1,
        contentType: 'text/plain',
      });
      await expect(whole.stat('text/a.txt')).resolves.toBeUndefined();
      await expect(whole.deletePrefix('tenant-x')).resolves.toBe(1);
    } finally {
      await prefixed.close();
      await whole.close();
    }
  });
});
