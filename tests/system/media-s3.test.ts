import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '@aiva/shared/testing';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, writeJpegWithGps } from '../../subgraphs/media/test/processing/fixtures.js';
import { type S3TestServer, startS3Server } from '../helpers/s3-server.js';
import { accountKit } from '../helpers/security-kit.js';
import { tusOffset, tusPatch, tusUpload } from '../helpers/tus.js';
import { type RunningSystem, startSystem } from './helpers/system.js';

// The media subgraph on S3 (a real S3 server process, s3rver): the upload in progress is staged in the bucket, so
// it resumes there; the file and its renditions are stored there and served from there through the gateway.

let s3: S3TestServer;
let system: RunningSystem;
let work: { dir: string; cleanup: () => Promise<void> };
const kit = accountKit(() => system.gatewayUrl, 'media-s3');

beforeAll(async () => {
  work = await makeTempDir('system-s3');
  s3 = await startS3Server();
  system = await startSystem({
    env: {
      S3_BUCKET: s3.bucket,
      S3_ENDPOINT: s3.endpoint,
      S3_ACCESS_KEY_ID: s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
      S3_PREFIX: 'aiva/',
    },
  });
}, 120_000);

afterAll(async () => {
  await system?.stop('SIGKILL');
  await s3?.stop();
  await work?.cleanup();
});

/** The keys in the bucket under `prefix`. */
async function keys(prefix: string): Promise<string[]> {
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  try {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
    return (listed.Contents ?? []).map((object) => object.Key ?? '');
  } finally {
    client.destroy();
  }
}

describe('media on S3', { timeout: 120_000 }, () => {
  it('stages a resumable upload in the bucket, stores the file and its renditions there, and serves them', async () => {
    const person = await kit.signUp();
    const path = join(work.dir, 'photo.jpg');
    await writeJpegWithGps(path, 1200, 800);
    const bytes = await readFile(path);
    const created = await kit.call<{ createUpload: { uploadUrl: string; media: { id: string } } }>(
      'mutation($input: CreateUploadInput!) { createUpload(input: $input) { uploadUrl media { id } } }',
      { input: { filename: 'photo.jpg', mimeType: 'image/jpeg', size: bytes.length } },
      person.accessToken,
    );
    const { uploadUrl, media } = created.body.data?.createUpload ?? { uploadUrl: '', media: { id: '' } };
    const half = Math.floor(bytes.length / 2);
    expect((await tusPatch(uploadUrl, bytes.subarray(0, half), 0)).status).toBe(204);
    // Staged in the bucket, under the deployment's prefix.
    expect(await keys(`aiva/uploads/${media.id}/`)).toContain(`aiva/uploads/${media.id}/info.json`);
    expect(await tusOffset(uploadUrl)).toBe(half);
    expect((await tusUpload(uploadUrl, bytes, 64 * 1024)).status).toBe(204);

    const ready = await waitFor(
      async () => {
        const result = await kit.call<{
          media: { status: string; sha256: string; variants: Array<{ name: string; url: string }> };
        }>(
          'query($id: ID!) { media(id: $id) { status sha256 variants { name url } } }',
          { id: media.id },
          person.accessToken,
        );
        const found = result.body.data?.media;
        return found && ['READY', 'FAILED'].includes(found.status) ? found : undefined;
      },
      60_000,
      'processing',
    );
    expect(ready.status).toBe('READY');
    const stored = await keys(`aiva/owners/${person.user.id}/${ready.sha256}/`);
    expect(stored).toEqual(expect.arrayContaining([`aiva/owners/${person.user.id}/${ready.sha256}/source`]));
    expect(stored.length).toBe(1 + ready.variants.length);
    // The staging is gone once the file is stored.
    expect(await keys(`aiva/uploads/${media.id}/`)).toEqual([]);
    const medium = ready.variants.find((v) => v.name === 'medium.webp');
    const served = await fetch(medium?.url ?? '');
    expect(served.status).toBe(200);
    const meta = await sharp(Buffer.from(await served.arrayBuffer())).metadata();
    expect(meta).toMatchObject({ format: 'webp', width: 1024 });
    expect(meta.exif).toBeUndefined();
  });
});
