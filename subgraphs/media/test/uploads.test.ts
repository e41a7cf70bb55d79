import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSealingKey, sealingKeys, uuidv7, type Viewer } from '@aiva/shared';
import { Upload } from '@tus/server';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTusServer, registerUploadRoutes, type UploadsOptions } from '../src/http/uploads.js';
import { MediaService } from '../src/media.service.js';
import { kindOfMimeType } from '../src/processing/index.js';
import { UrlSigner } from '../src/signed-urls.js';
import { createTusDatastore, type FileStorage, LocalFileStorage } from '../src/storage/index.js';
import type { MediaStore } from '../src/store/media.store.js';
import { openSqliteMediaStore } from '../src/store/sqlite.js';
import { makeTempDir, writePng } from './processing/fixtures.js';

// The upload route on its own (real tus server, staging, store and disk storage on a real HTTP port): a
// completion that fails because the storage is down keeps the staged bytes, and the client's next HEAD completes
// the upload; a client that lost the last answer learns that every byte arrived.

const MIB = 1024 * 1024;
const person: Viewer = { userId: uuidv7(), sessionId: 's', roles: ['user'], kind: 'user' };

/** Disk storage whose writes fail while `down` is set, as a storage outage would. */
class FlakyStorage extends LocalFileStorage {
  down = false;
  override async putFile(key: string, path: string, options: { contentType: string }) {
    if (this.down) throw new Error('storage unavailable');
    return super.putFile(key, path, options);
  }
}

let tmp: { dir: string; cleanup: () => Promise<void> };
let app: FastifyInstance;
let base = '';
let store: MediaStore;
let storage: FlakyStorage;
let service: MediaService;
let signer: UrlSigner;

beforeAll(async () => {
  tmp = await makeTempDir('uploads');
  store = openSqliteMediaStore({ file: join(tmp.dir, 'media.sqlite') });
  storage = new FlakyStorage({ root: join(tmp.dir, 'files') });
  const datastore = createTusDatastore(
    { kind: 'local', root: join(tmp.dir, 'files') },
    {
      stagingDir: join(tmp.dir, 'uploads'),
    },
  );
  signer = new UrlSigner(sealingKeys([generateSealingKey()]), 'http://placeholder');
  const maxBytes = { IMAGE: 10 * MIB, VIDEO: 10 * MIB, AUDIO: 10 * MIB, DOCUMENT: 10 * MIB };
  service = new MediaService({
    store,
    storage: storage as FileStorage,
    staging: {
      create: async (id, size) => {
        await datastore.create(new Upload({ id, size, offset: 0, metadata: {} }));
      },
      remove: async (id) => {
        await datastore.remove(id).catch(() => {});
      },
    },
    limits: { maxBytes, quotaBytes: 100 * MIB, urlTtlSeconds: 600 },
    kindOf: kindOfMimeType,
  });
  const options: UploadsOptions = {
    store,
    storage,
    datastore,
    signer,
    service,
    maxBytes,
    workRoot: tmp.dir,
  };
  app = Fastify();
  await registerUploadRoutes(app, createTusServer(options), options);
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await app?.close();
  await store?.close();
  await tmp?.cleanup();
});

const TUS = { 'tus-resumable': '1.0.0' };

async function start(bytes: Buffer) {
  const { record, expiresAt } = await service.createUpload(person, {
    filename: 'pic.png',
    mimeType: 'image/png',
    size: bytes.length,
    visibility: 'PRIVATE',
  });
  const url = signer.uploadUrl(record.id, expiresAt).replace('http://placeholder', base);
  return { id: record.id, url };
}

const patch = (url: string, bytes: Buffer, offset: number) =>
  fetch(url, {
    method: 'PATCH',
    headers: { ...TUS, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
    body: new Uint8Array(bytes),
  });
const head = (url: string) => fetch(url, { method: 'HEAD', headers: TUS });

describe('the upload route', () => {
  it('keeps a complete upload through a storage outage and completes it on the next HEAD', async () => {
    const path = join(tmp.dir, 'pic.png');
    await writePng(path, 200, 100);
    const bytes = await readFile(path);
    const { id, url } = await start(bytes);

    storage.down = true;
    const failed = await patch(url, bytes, 0);
    expect(failed.status).toBe(500);
    expect(await failed.text()).not.toMatch(/storage unavailable/);
    expect(await store.find(id)).toMatchObject({ status: 'AWAITING_UPLOAD' });
    // Still down: the HEAD retries, fails, and the bytes stay.
    expect((await head(url)).status).toBe(500);

    storage.down = false;
    const answered = await head(url);
    expect(answered.status).toBe(200);
    expect(answered.headers.get('upload-offset')).toBe(String(bytes.length));
    expect(await store.find(id)).toMatchObject({ status: 'UPLOADED', kind: 'IMAGE', size: bytes.length });
    const events = await store.pendingEvents(10);
    expect(
      events.filter((e) => e.type === 'aiva.media.media.uploaded.v1' && (e.data as { id: string }).id === id),
    ).toHaveLength(1);
    // Asked again: the same answer, nothing done twice.
    expect((await head(url)).headers.get('upload-offset')).toBe(String(bytes.length));
    expect((await store.pendingEvents(10)).filter((e) => (e.data as { id: string }).id === id)).toHaveLength(
      1,
    );
  });

  it('refuses URLs that are not signed for the upload, creation and downloads of staged bytes', async () => {
    const path = join(tmp.dir, 'small.png');
    await writePng(path, 20, 20);
    const bytes = await readFile(path);
    const { url } = await start(bytes);
    const unsigned = url.split('?')[0] ?? '';
    expect((await patch(unsigned, bytes, 0)).status).toBe(403);
    expect((await patch(url.replace(/t=[^&]+/, 't=k1.1.AAAA'), bytes, 0)).status).toBe(403);
    const other = await start(bytes);
    expect(
      (await patch(other.url.replace(other.id, url.split('/').pop()?.split('?')[0] ?? ''), bytes, 0)).status,
    ).toBe(403);
    expect(
      (await fetch(`${base}/media/uploads`, { method: 'POST', headers: { ...TUS, 'upload-length': '10' } }))
        .status,
    ).toBe(405);
    expect((await fetch(url)).status).toBe(405);
  });
});

describe('uploads for someone else', () => {
  const ai: Viewer = { userId: 'service:ai', sessionId: 'service', roles: ['service'], kind: 'service' };
  const request = {
    filename: 'made.png',
    mimeType: 'image/png',
    size: 1_000,
    visibility: 'PRIVATE' as const,
  };

  it("a service's upload is the named person's item, counted in their quota", async () => {
    const other: Viewer = { ...person, userId: uuidv7() };
    const { record } = await service.createUpload(ai, { ...request, ownerId: other.userId });
    expect(record.ownerId).toBe(other.userId);
    expect(await store.usedBytes(other.userId)).toBe(1_000);
    await expect(service.get(other, record.id)).resolves.toMatchObject({ id: record.id });
  });

  it('a service must name the person; a person may name only themselves', async () => {
    await expect(service.createUpload(ai, request)).rejects.toMatchObject({
      extensions: { code: 'BAD_USER_INPUT', field: 'ownerId' },
    });
    await expect(service.createUpload(person, { ...request, ownerId: uuidv7() })).rejects.toMatchObject({
      extensions: { code: 'FORBIDDEN' },
    });
    const own = await service.createUpload(person, { ...request, ownerId: person.userId });
    expect(own.record.ownerId).toBe(person.userId);
  });
});
