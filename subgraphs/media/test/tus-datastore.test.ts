import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server as HttpServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ERRORS, Server, Upload } from '@tus/server';
import { Upload as TusClientUpload } from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type S3TestServer, startS3Server } from '../../../tests/helpers/s3-server.js';
import {
  createStorage,
  createTusDatastore,
  type FileStorage,
  LocalFileStorage,
  openStagedUpload,
  PartsDataStore,
  partNameOf,
  type S3StorageConfig,
  StorageNotFoundError,
  type TusDatastore,
} from '../src/storage/index.js';
import { readAll } from './storage.contract.js';

const CHUNK = 256 * 1024;
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A real tus server on a spare port answering under `/media/uploads`; `settled()` waits for every request so far. */
interface TusTestServer {
  url: string;
  /** Resolves once every request received so far has been handled (its store calls done). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

async function startTusServer(datastore: TusDatastore): Promise<TusTestServer> {
  const tus = new Server({ path: '/media/uploads', datastore });
  const handling = new Set<Promise<unknown>>();
  const http: HttpServer = createServer((req, res) => {
    const handled = tus.handle(req, res).catch(() => undefined);
    handling.add(handled);
    void handled.finally(() => handling.delete(handled));
  });
  await new Promise<void>((done) => http.listen(0, '127.0.0.1', done));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/media/uploads`,
    settled: async () => {
      await Promise.all([...handling]);
    },
    close: () =>
      new Promise<void>((done, fail) => {
        http.closeAllConnections();
        http.close((error) => (error ? fail(error) : done()));
      }),
  };
}

const TUS_HEADERS = { 'tus-resumable': '1.0.0' };

/** The server's offset of an upload (HEAD). */
async function headOffset(uploadUrl: string): Promise<number> {
  const response = await fetch(uploadUrl, { method: 'HEAD', headers: TUS_HEADERS });
  if (response.status !== 200) throw new Error(`HEAD ${uploadUrl} answered ${response.status}`);
  return Number(response.headers.get('upload-offset'));
}

/**
 * A raw PATCH announcing `chunk.length` bytes at `offset` that sends only the first `sent` bytes and then destroys
 * the socket, as a client losing its connection mid-body; resolves once the socket is closed.
 */
function cutPatch(uploadUrl: string, offset: number, chunk: Buffer, sent: number): Promise<void> {
  return new Promise((done) => {
    const req = request(uploadUrl, {
      method: 'PATCH',
      headers: {
        ...TUS_HEADERS,
        'upload-offset': String(offset),
        'content-type': 'application/offset+octet-stream',
        'content-length': String(chunk.length),
      },
    });
    req.on('error', () => undefined);
    req.on('close', () => done());
    req.flushHeaders();
    req.write(chunk.subarray(0, sent), () => req.destroy());
  });
}

/** Uploads with tus-js-client to an existing upload URL, aborting once `stopAfter` bytes were accepted. */
function uploadUntil(uploadUrl: string, data: Buffer, stopAfter: number): Promise<number> {
  return new Promise((done, fail) => {
    const upload: TusClientUpload = new TusClientUpload(data, {
      uploadUrl,
      chunkSize: CHUNK,
      retryDelays: [],
      onChunkComplete: (_chunk, accepted) => {
        if (accepted >= stopAfter) void upload.abort().then(() => done(accepted), fail);
      },
      onSuccess: () => fail(new Error('the upload finished before it was interrupted')),
      onError: fail,
    });
    upload.start();
  });
}

/** Uploads with a new tus-js-client to an existing upload URL until done; the first offset it reported. */
function uploadToEnd(uploadUrl: string, data: Buffer): Promise<{ firstAccepted: number }> {
  return new Promise((done, fail) => {
    let firstAccepted = -1;
    const upload = new TusClientUpload(data, {
      uploadUrl,
      chunkSize: CHUNK,
      retryDelays: [],
      onChunkComplete: (_chunk, accepted) => {
        if (firstAccepted < 0) firstAccepted = accepted;
      },
      onSuccess: () => done({ firstAccepted }),
      onError: fail,
    });
    upload.start();
  });
}

/** A datastore made by createTusDatastore, and how to dispose of it. */
interface OpenedDatastore {
  datastore: TusDatastore;
  /** The storage a PartsDataStore writes to; undefined for FileStore. */
  storage?: FileStorage;
  /** Where the staged file of an upload is expected (FileStore), or undefined (S3). */
  pathOf(id: string): string | undefined;
  cleanup(): Promise<void>;
}

function tusDatastoreSuite(name: string, open: () => Promise<OpenedDatastore>): void {
  describe(`tus datastore: ${name}`, { timeout: 60_000 }, () => {
    let opened: OpenedDatastore;
    let datastore: TusDatastore;
    let server: TusTestServer;

    beforeAll(async () => {
      opened = await open();
      datastore = opened.datastore;
      server = await startTusServer(datastore);
    });
    afterAll(async () => {
      await server?.close();
      await opened?.cleanup();
    });

    it('resumes a pre-created upload after an interruption and yields the exact bytes', async () => {
      const data = randomBytes(1024 * 1024 + 12_345);
      const id = randomUUID();
      await datastore.create(
        new Upload({ id, size: data.length, offset: 0, metadata: { filename: 'clip.bin' } }),
      );
      const uploadUrl = `${server.url}/${id}`;

      const accepted = await uploadUntil(uploadUrl, data, CHUNK);
      const partial = await openStagedUpload(datastore, id);
      expect(partial.offset).toBe(accepted);
      expect(partial.offset).toBeLessThan(data.length);
      expect(partial.complete).toBe(false);
      await expect(partial.stream()).rejects.toThrow(/not complete/);

      const { firstAccepted } = await uploadToEnd(uploadUrl, data);
      expect(firstAccepted).toBeGreaterThan(accepted);

      const staged = await openStagedUpload(datastore, id);
      expect(staged).toMatchObject({ id, size: data.length, offset: data.length, complete: true });
      expect(staged.metadata).toEqual({ filename: 'clip.bin' });
      expect(staged.path).toBe(opened.pathOf(id));
      expect(sha256(await readAll(await staged.stream()))).toBe(sha256(data));

      await staged.remove();
      await expect(openStagedUpload(datastore, id)).rejects.toBeInstanceOf(StorageNotFoundError);
      await expect(staged.remove()).resolves.toBeUndefined();
      expect((await fetch(uploadUrl, { method: 'HEAD', headers: { 'tus-resumable': '1.0.0' } })).status).toBe(
        404,
      );
    });

    it('answers unknown and malformed upload ids as not found', async () => {
      await expect(openStagedUpload(datastore, randomUUID())).rejects.toBeInstanceOf(StorageNotFoundError);
      await expect(openStagedUpload(datastore, '../files')).rejects.toBeInstanceOf(StorageNotFoundError);
      const head = await fetch(`${server.url}/${randomUUID()}`, {
        method: 'HEAD',
        headers: { 'tus-resumable': '1.0.0' },
      });
      expect(head.status).toBe(404);
    });
  });
}

tusDatastoreSuite('local storage (FileStore)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'aiva-tus-'));
  return {
    datastore: createTusDatastore(
      { kind: 'local', root: join(dir, 'files') },
      { stagingDir: join(dir, 'uploads') },
    ),
    pathOf: (id) => join(dir, 'uploads', id),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

// One s3rver process for every S3 suite of this file.
let s3: S3TestServer | undefined;
afterAll(async () => {
  await s3?.stop();
});

/** The S3 config of a fresh prefix on the shared s3rver (started on first use). */
async function s3Config(): Promise<{ kind: 's3' } & S3StorageConfig> {
  s3 ??= await startS3Server();
  return {
    kind: 's3',
    bucket: s3.bucket,
    region: 'us-east-1',
    endpoint: s3.endpoint,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: true,
    prefix: `run-${randomBytes(6).toString('hex')}`,
  };
}

/** A PartsDataStore over a local directory. */
async function openLocalParts(): Promise<OpenedDatastore & { storage: FileStorage }> {
  const dir = await mkdtemp(join(tmpdir(), 'aiva-tus-parts-'));
  const storage = new LocalFileStorage({ root: join(dir, 'files') });
  return {
    datastore: new PartsDataStore(storage),
    storage,
    pathOf: () => undefined,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The S3 datastore createTusDatastore makes (a PartsDataStore) on s3rver, with a storage of the same config. */
async function openS3Parts(): Promise<OpenedDatastore & { storage: FileStorage }> {
  const config = await s3Config();
  const storage = createStorage(config);
  return {
    datastore: createTusDatastore(config, { storage }),
    storage,
    pathOf: () => undefined,
    async cleanup() {
      await storage.deletePrefix('uploads');
      await storage.close();
    },
  };
}

tusDatastoreSuite('local storage (PartsDataStore)', openLocalParts);
tusDatastoreSuite('S3 storage on s3rver (PartsDataStore)', openS3Parts);

/** What only the parts store promises: atomic parts, the size limit, leftovers ignored, read and remove. */
function partsDatastoreSuite(
  name: string,
  open: () => Promise<OpenedDatastore & { storage: FileStorage }>,
): void {
  describe(`parts datastore: ${name}`, { timeout: 60_000 }, () => {
    let opened: OpenedDatastore & { storage: FileStorage };
    let datastore: PartsDataStore;
    let storage: FileStorage;
    let server: TusTestServer;

    beforeAll(async () => {
      opened = await open();
      if (!(opened.datastore instanceof PartsDataStore)) throw new Error('expected a PartsDataStore');
      datastore = opened.datastore;
      storage = opened.storage;
      server = await startTusServer(datastore);
    });
    afterAll(async () => {
      await server?.close();
      await opened?.cleanup();
    });

    /** A fresh upload of `data`'s size; its id and URL. */
    async function createUpload(data: Buffer): Promise<{ id: string; uploadUrl: string }> {
      const id = randomUUID();
      await datastore.create(
        new Upload({ id, size: data.length, offset: 0, metadata: { filename: 'f.bin' } }),
      );
      return { id, uploadUrl: `${server.url}/${id}` };
    }

    it('declares creation and termination only', () => {
      expect(datastore.extensions).toEqual(['creation', 'termination']);
    });

    // @tus/server ends a PATCH body gracefully when the client disconnects (it does not error it), so the part
    // holds the prefix of the body that did arrive and the offset moves to its end — tus's own semantics.
    it('keeps a PATCH cut mid-body as a whole part of what arrived, then resumes to the exact bytes', async () => {
      const data = randomBytes(3 * CHUNK + 777);
      const { id, uploadUrl } = await createUpload(data);
      await uploadUntil(uploadUrl, data, CHUNK);
      const boundary = await headOffset(uploadUrl);
      expect(boundary).toBe(CHUNK);

      await cutPatch(uploadUrl, boundary, data.subarray(boundary, boundary + CHUNK), CHUNK / 2);
      await server.settled();
      const afterCut = await headOffset(uploadUrl);
      expect(afterCut).toBeGreaterThanOrEqual(boundary);
      expect(afterCut).toBeLessThanOrEqual(boundary + CHUNK / 2);
      const parts = await storage.list(`uploads/${id}`);
      expect(parts.filter((part) => !part.key.endsWith('info.json')).map((part) => part.key)).toEqual(
        afterCut > boundary
          ? [`uploads/${id}/${partNameOf(0)}`, `uploads/${id}/${partNameOf(boundary)}`]
          : [`uploads/${id}/${partNameOf(0)}`],
      );
      expect((await readAll(await datastore.read(id))).equals(data.subarray(0, afterCut))).toBe(true);

      await uploadToEnd(uploadUrl, data);
      const staged = await openStagedUpload(datastore, id);
      expect(staged).toMatchObject({ offset: data.length, complete: true });
      expect(sha256(await readAll(await staged.stream()))).toBe(sha256(data));
    });

    it('reads a finished upload back as the exact bytes, and remove leaves nothing', async () => {
      const data = randomBytes(2 * CHUNK + 1);
      const { id, uploadUrl } = await createUpload(data);
      await uploadToEnd(uploadUrl, data);
      const names = (await storage.list(`uploads/${id}`)).map((object) => object.key.split('/').pop());
      expect(names).toEqual([partNameOf(0), partNameOf(CHUNK), partNameOf(2 * CHUNK), 'info.json']);
      expect((await readAll(await datastore.read(id))).equals(data)).toBe(true);

      await datastore.remove(id);
      await expect(storage.list(`uploads/${id}`)).resolves.toEqual([]);
      await expect(datastore.getUpload(id)).rejects.toBe(ERRORS.FILE_NOT_FOUND);
      await expect(datastore.remove(id)).rejects.toBe(ERRORS.FILE_NOT_FOUND);
    });

    it('refuses a body past the declared size and stores nothing of it', async () => {
      const data = randomBytes(1000);
      const { id } = await createUpload(data);
      await expect(datastore.write(Readable.from([data.subarray(0, 600)]), id, 0)).resolves.toBe(600);
      await expect(
        datastore.write(Readable.from([data.subarray(600), Buffer.alloc(1)]), id, 600),
      ).rejects.toBe(ERRORS.ERR_SIZE_EXCEEDED);
      await expect(datastore.getUpload(id)).resolves.toMatchObject({ offset: 600, size: 1000 });
      await expect(storage.stat(`uploads/${id}/${partNameOf(600)}`)).resolves.toBeUndefined();
      const tooLong = await fetch(`${server.url}/${id}`, {
        method: 'PATCH',
        headers: {
          ...TUS_HEADERS,
          'upload-offset': '600',
          'content-type': 'application/offset+octet-stream',
        },
        body: randomBytes(401),
      });
      expect(tooLong.status).toBe(413);
      await expect(storage.stat(`uploads/${id}/${partNameOf(600)}`)).resolves.toBeUndefined();
      await expect(datastore.write(Readable.from([]), id, 600)).resolves.toBe(600);
      await expect(datastore.write(Readable.from([data.subarray(600)]), id, 600)).resolves.toBe(1000);
      expect((await readAll(await datastore.read(id))).equals(data)).toBe(true);
    });

    it('stores nothing when the body errors mid-way', async () => {
      const data = randomBytes(1000);
      const { id } = await createUpload(data);
      async function* failing(): AsyncGenerator<Buffer> {
        yield data.subarray(0, 300);
        throw new Error('connection lost');
      }
      await expect(datastore.write(Readable.from(failing()), id, 0)).rejects.toThrow(/connection lost/);
      await expect(datastore.getUpload(id)).resolves.toMatchObject({ offset: 0 });
      await expect(storage.list(`uploads/${id}`)).resolves.toEqual([
        { key: `uploads/${id}/info.json`, size: expect.any(Number) },
      ]);
    });

    it('ignores parts that do not continue the chain', async () => {
      const data = randomBytes(1000);
      const { id } = await createUpload(data);
      const put = (offset: number, bytes: Buffer) =>
        storage.put(`uploads/${id}/${partNameOf(offset)}`, bytes, {
          contentType: 'application/octet-stream',
        });
      await put(0, data.subarray(0, 400));
      await put(200, data.subarray(200, 500)); // a leftover of a lost race: overlaps the first part
      await put(700, data.subarray(700, 900)); // past a gap
      await expect(datastore.getUpload(id)).resolves.toMatchObject({ offset: 400 });
      await put(400, data.subarray(400, 700));
      await expect(datastore.getUpload(id)).resolves.toMatchObject({ offset: 900 });
      await put(900, data.subarray(900));
      expect((await readAll(await datastore.read(id))).equals(data)).toBe(true);
      await datastore.remove(id);
      await expect(storage.list(`uploads/${id}`)).resolves.toEqual([]);
    });

    it('refuses deferred lengths and answers unknown ids as not found', async () => {
      await expect(datastore.create(new Upload({ id: randomUUID(), offset: 0 }))).rejects.toBe(
        ERRORS.UNSUPPORTED_CREATION_DEFER_LENGTH_EXTENSION,
      );
      await expect(datastore.getUpload(randomUUID())).rejects.toBe(ERRORS.FILE_NOT_FOUND);
      await expect(datastore.read('../files')).rejects.toBe(ERRORS.FILE_NOT_FOUND);
      await expect(datastore.write(Readable.from([]), randomUUID(), 0)).rejects.toBe(ERRORS.FILE_NOT_FOUND);
    });
  });
}

partsDatastoreSuite('local storage', openLocalParts);
partsDatastoreSuite('S3 storage on s3rver', openS3Parts);

describe('tus datastore: S3 staging layout', () => {
  it('stages uploads in the storage bucket under <prefix>uploads/<id>/, ids unprefixed', async () => {
    const config = await s3Config();
    const datastore = createTusDatastore(config);
    const storage = createStorage(config);
    try {
      expect(datastore).toBeInstanceOf(PartsDataStore);
      const id = randomUUID();
      const created = await datastore.create(
        new Upload({ id, size: 10, offset: 0, metadata: { filename: 'a.txt' } }),
      );
      expect(created).toMatchObject({ id, offset: 0, storage: { type: 'parts-s3', path: `uploads/${id}` } });
      await expect(storage.stat(`uploads/${id}/info.json`)).resolves.toMatchObject({
        contentType: 'application/json',
      });
      const raw = createStorage({ ...config, prefix: undefined });
      await expect(raw.list(`${config.prefix}/uploads/${id}`)).resolves.toHaveLength(1);
      await raw.close();
      await storage.deletePrefix('uploads');
    } finally {
      await storage.close();
      if (datastore instanceof PartsDataStore) await datastore.storage.close();
    }
  });
});

describe('createTusDatastore', () => {
  it('needs a staging directory for local storage', () => {
    expect(() => createTusDatastore({ kind: 'local', root: join(tmpdir(), 'files') })).toThrow(/stagingDir/);
  });
});
