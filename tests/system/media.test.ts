import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UrlSigner } from '@aiva/media';
import { loadSealingKeys, openSqliteDatabase } from '@aiva/shared';
import { waitFor } from '@aiva/shared/testing';
import sharp from 'sharp';
import { Upload } from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildPdf,
  exifHasGps,
  makeTempDir,
  writeExecutableHead,
  writeJpegWithGps,
  writePng,
  writePngBomb,
  writeTestVideo,
} from '../../subgraphs/media/test/processing/fixtures.js';
import { accountKit, codeOf } from '../helpers/security-kit.js';
import { tusOffset, tusPatch, tusUpload } from '../helpers/tus.js';
import { logOf, type RunningSystem, startSystem } from './helpers/system.js';

// The media subgraph as `pnpm start` runs it (its own process, registered with the orchestrator, its upload and
// download routes on the gateway's public port): files go up over tus, are typed by their bytes, processed into
// renditions by the durable worker, and come back through signed URLs.

const MIB = 1024 * 1024;
const QUOTA = 40 * MIB;
let system: RunningSystem;
let work: { dir: string; cleanup: () => Promise<void> };
const kit = accountKit(() => system.gatewayUrl, 'media');

beforeAll(async () => {
  work = await makeTempDir('system');
  system = await startSystem({
    env: {
      MEDIA_QUOTA_BYTES: String(QUOTA),
      // A dead worker's file is taken over within seconds.
      MEDIA_PROCESSING_LEASE_MS: '3000',
    },
  });
}, 120_000);

afterAll(async () => {
  await system?.stop('SIGKILL');
  await work?.cleanup();
});

const MEDIA_FIELDS = `id kind filename mimeType size sha256 status progress failureReason visibility width height
  durationSeconds pageCount url textUrl variants { name url width height mimeType size } owner { id }`;

interface MediaView {
  id: string;
  kind: string;
  filename: string;
  mimeType: string;
  size: number;
  sha256: string | null;
  status: string;
  failureReason: string | null;
  width: number | null;
  height: number | null;
  durationSeconds: number | null;
  pageCount: number | null;
  url: string | null;
  textUrl: string | null;
  variants: Array<{
    name: string;
    url: string;
    width: number | null;
    height: number | null;
    mimeType: string;
  }>;
  owner: { id: string };
}

const CREATE_UPLOAD = `mutation Create($input: CreateUploadInput!) {
  createUpload(input: $input) { uploadUrl expiresAt media { ${MEDIA_FIELDS} } }
}`;
const MEDIA = `query Media($id: ID!) { media(id: $id) { ${MEDIA_FIELDS} } }`;

async function createUpload(token: string, input: Record<string, unknown>) {
  return kit.call<{ createUpload: { uploadUrl: string; expiresAt: string; media: MediaView } }>(
    CREATE_UPLOAD,
    { input },
    token,
  );
}

/** Starts an upload and returns its URL and media id (fails the test on an error). */
async function startUpload(token: string, filename: string, mimeType: string, size: number) {
  const result = await createUpload(token, { filename, mimeType, size });
  expect(result.body.errors).toBeUndefined();
  const created = result.body.data?.createUpload;
  if (!created) throw new Error('no upload');
  return { url: created.uploadUrl, id: created.media.id };
}

async function mediaOf(token: string | undefined, id: string) {
  return kit.call<{ media: MediaView | null }>(MEDIA, { id }, token);
}

/** The media item once processing ended (READY or FAILED). */
async function settled(token: string, id: string, timeoutMs = 60_000): Promise<MediaView> {
  return waitFor(
    async () => {
      const media = (await mediaOf(token, id)).body.data?.media;
      return media && ['READY', 'FAILED'].includes(media.status) ? media : undefined;
    },
    timeoutMs,
    `media ${id} to be processed`,
  );
}

/** Uploads a whole file in 256 KiB PATCHes and waits for its processing. */
async function uploadFile(token: string, filename: string, mimeType: string, bytes: Buffer) {
  const { url, id } = await startUpload(token, filename, mimeType, bytes.length);
  const last = await tusUpload(url, bytes, 256 * 1024);
  return { id, url, last };
}

/** The media service's own URL signer (its keys from the data directory): URLs the service would make. */
async function serviceSigner(): Promise<UrlSigner> {
  const keys = await loadSealingKeys({ file: join(system.dataDir, 'media-url-keys.json'), create: false });
  return new UrlSigner(keys, `http://127.0.0.1:${system.ports.gateway}`);
}

async function download(url: string, init?: RequestInit) {
  const response = await fetch(url, init);
  return { response, bytes: Buffer.from(await response.arrayBuffer()) };
}

describe('media through the gateway', { timeout: 120_000 }, () => {
  it('takes a JPEG over tus (tus-js-client, resumable) and serves its renditions without the GPS position', async () => {
    const person = await kit.signUp();
    const path = join(work.dir, 'gps.jpg');
    await writeJpegWithGps(path, 1600, 1200);
    const bytes = await readFile(path);
    expect(exifHasGps((await sharp(bytes).metadata()).exif ?? Buffer.alloc(0))).toBe(true);

    const { url, id } = await startUpload(person.accessToken, 'holiday.jpg', 'image/jpeg', bytes.length);
    await new Promise<void>((resolve, reject) => {
      const upload = new Upload(bytes, {
        uploadUrl: url,
        chunkSize: 64 * 1024,
        retryDelays: [0, 200],
        onError: reject,
        onSuccess: () => resolve(),
      });
      upload.start();
    });
    const media = await settled(person.accessToken, id);
    expect(media).toMatchObject({
      status: 'READY',
      kind: 'IMAGE',
      mimeType: 'image/jpeg',
      width: 1600,
      height: 1200,
      size: bytes.length,
      owner: { id: person.user.id },
    });
    expect(media.sha256).toMatch(/^[0-9a-f]{64}$/);
    const names = media.variants.map((v) => v.name).sort();
    expect(names).toEqual(
      expect.arrayContaining([
        'original.jpg',
        'thumbnail.webp',
        'thumbnail.avif',
        'medium.webp',
        'medium.avif',
      ]),
    );
    // Every served rendition, the full-size one included, is re-encoded without EXIF.
    expect(media.url).toBe(media.variants.find((v) => v.name === 'original.jpg')?.url);
    for (const variant of media.variants) {
      const { response, bytes: served } = await download(variant.url);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe(variant.mimeType);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('content-disposition')).toMatch(/^inline; filename="holiday-/);
      const meta = await sharp(served).metadata();
      expect(meta.exif, variant.name).toBeUndefined();
      expect(meta.width).toBe(variant.width);
    }
    // The uploaded bytes themselves are never served for an image, even with a valid signature for them.
    const source = (await serviceSigner()).downloadUrl(id, 'source', 600);
    expect((await fetch(source)).status).toBe(404);
  });

  it('resumes an interrupted upload from the offset the server has, and stores an identical file once', async () => {
    const person = await kit.signUp();
    const path = join(work.dir, 'resume.png');
    await writePng(path, 900, 700);
    const bytes = await readFile(path);
    const { url, id } = await startUpload(person.accessToken, 'resume.png', 'image/png', bytes.length);
    const half = Math.floor(bytes.length / 2);
    // The first half arrives, then the connection drops (the client goes away mid-request).
    expect((await tusPatch(url, bytes.subarray(0, half), 0)).status).toBe(204);
    const cut = new AbortController();
    const dropped = fetch(url, {
      method: 'PATCH',
      headers: {
        'tus-resumable': '1.0.0',
        'upload-offset': String(half),
        'content-type': 'application/offset+octet-stream',
      },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(bytes.subarray(half, half + 1000));
          setTimeout(() => cut.abort(), 300);
        },
      }),
      signal: cut.signal,
      duplex: 'half',
    } as RequestInit).catch(() => null);
    await dropped;
    const offset = await waitFor(
      async () => {
        const value = await tusOffset(url);
        return value >= half ? value : undefined;
      },
      10_000,
      'the offset after the drop',
    );
    expect(offset).toBeGreaterThanOrEqual(half);
    expect(offset).toBeLessThan(bytes.length);
    expect((await tusUpload(url, bytes)).status).toBe(204);
    const first = await settled(person.accessToken, id);
    expect(first).toMatchObject({ status: 'READY', width: 900, height: 700 });
    // A client that lost the last answer asks again: every byte arrived.
    expect(await tusOffset(url)).toBe(bytes.length);

    // The same bytes again: a second item, its renditions those of the first (same content folder).
    const again = await uploadFile(person.accessToken, 'copy.png', 'image/png', bytes);
    const second = await settled(person.accessToken, again.id);
    expect(second).toMatchObject({ status: 'READY', sha256: first.sha256 });
    expect(second.variants.map((v) => v.name).sort()).toEqual(first.variants.map((v) => v.name).sort());
    const files = await readdirDeep(join(system.dataDir, 'media', 'files', 'owners', person.user.id));
    expect(files.filter((file) => file.endsWith('/source'))).toHaveLength(1);
  });

  it('types a file by its bytes: a PNG named .pdf is an image', async () => {
    const person = await kit.signUp();
    const path = join(work.dir, 'renamed.png');
    await writePng(path, 300, 200);
    const { id } = await uploadFile(
      person.accessToken,
      'report.pdf',
      'application/pdf',
      await readFile(path),
    );
    const media = await settled(person.accessToken, id);
    expect(media).toMatchObject({ status: 'READY', kind: 'IMAGE', mimeType: 'image/png', width: 300 });
  });

  it('refuses an executable at its last byte, and a 50,000 × 50,000 pixel bomb without decoding it', async () => {
    const person = await kit.signUp();
    const exe = join(work.dir, 'tool.bin');
    await writeExecutableHead(exe);
    const refused = await uploadFile(person.accessToken, 'cat.jpg', 'image/jpeg', await readFile(exe));
    expect(refused.last.status).toBe(415);
    const failed = (await mediaOf(person.accessToken, refused.id)).body.data?.media;
    expect(failed).toMatchObject({ status: 'FAILED', url: null, variants: [] });
    expect(failed?.failureReason).toMatch(/not allowed/i);
    expect((await fetch(refused.url, { method: 'HEAD', headers: { 'tus-resumable': '1.0.0' } })).status).toBe(
      410,
    );

    const bomb = join(work.dir, 'bomb.png');
    await writePngBomb(bomb, 50_000);
    const bombBytes = await readFile(bomb);
    expect(bombBytes.length).toBeLessThan(2 * MIB);
    const { id } = await uploadFile(person.accessToken, 'bomb.png', 'image/png', bombBytes);
    const media = await settled(person.accessToken, id);
    expect(media.status).toBe('FAILED');
    expect(media.failureReason).toMatch(/pixels|too large/i);
    // The service is still there and answering.
    expect((await fetch(`http://127.0.0.1:${system.ports.media}/health`)).status).toBe(200);
  });

  it('refuses an upload beyond the quota with BAD_USER_INPUT naming it', async () => {
    const person = await kit.signUp();
    const result = await createUpload(person.accessToken, {
      filename: 'big.mp4',
      mimeType: 'video/mp4',
      size: QUOTA + 1,
    });
    expect(codeOf(result)).toBe('BAD_USER_INPUT');
    expect(result.body.errors?.[0]?.message).toMatch(/quota/);
    expect(result.body.errors?.[0]?.extensions).toMatchObject({ reason: 'QUOTA_EXCEEDED', limit: QUOTA });
    const odd = await createUpload(person.accessToken, {
      filename: 'x.exe',
      mimeType: 'application/x-msdownload',
      size: 10,
    });
    expect(codeOf(odd)).toBe('BAD_USER_INPUT');
  });

  it('reads a PDF: page count, first-page preview and its text', async () => {
    const person = await kit.signUp();
    const pdf = buildPdf(['Quarterly aurora report', 'Second page about glaciers']);
    const { id } = await uploadFile(person.accessToken, 'report.pdf', 'application/pdf', pdf);
    const media = await settled(person.accessToken, id);
    expect(media).toMatchObject({
      status: 'READY',
      kind: 'DOCUMENT',
      pageCount: 2,
      mimeType: 'application/pdf',
    });
    expect(media.variants.some((v) => v.mimeType === 'image/webp' && (v.width ?? 0) <= 1024)).toBe(true);
    const text = await download(media.textUrl ?? '');
    expect(text.response.status).toBe(200);
    expect(text.bytes.toString('utf8')).toMatch(/aurora[\s\S]*glaciers/);
    const file = await download(media.url ?? '');
    expect(file.bytes.equals(pdf)).toBe(true);
    expect(file.response.headers.get('content-disposition')).toMatch(/^attachment; filename="report.pdf"/);
  });

  it('processes a short video: duration, poster frame and a web rendition served in ranges', async () => {
    const person = await kit.signUp();
    const path = join(work.dir, 'clip.mp4');
    await writeTestVideo(path, 2);
    const { id } = await uploadFile(person.accessToken, 'clip.mp4', 'video/mp4', await readFile(path));
    const media = await settled(person.accessToken, id, 90_000);
    expect(media).toMatchObject({ status: 'READY', kind: 'VIDEO', width: 320, height: 240 });
    expect(media.durationSeconds).toBeGreaterThan(1.5);
    expect(media.durationSeconds).toBeLessThan(2.5);
    const poster = media.variants.find((v) => v.name.startsWith('poster.'));
    expect(poster).toMatchObject({ width: 320, height: 240 });
    const web = media.variants.find((v) => v.name === 'web.mp4');
    expect(web?.mimeType).toBe('video/mp4');
    const part = await download(web?.url ?? '', { headers: { range: 'bytes=0-99' } });
    expect(part.response.status).toBe(206);
    expect(part.bytes.length).toBe(100);
    expect(part.response.headers.get('content-range')).toMatch(/^bytes 0-99\/\d+$/);
  });

  it("keeps a person's media to themself: FORBIDDEN for others, unless made PUBLIC", async () => {
    const owner = await kit.signUp();
    const other = await kit.signUp();
    const path = join(work.dir, 'private.png');
    await writePng(path, 64, 64);
    const { id } = await uploadFile(owner.accessToken, 'private.png', 'image/png', await readFile(path));
    await settled(owner.accessToken, id);
    expect(codeOf(await mediaOf(other.accessToken, id))).toBe('FORBIDDEN');
    expect(codeOf(await mediaOf(undefined, id))).toBe('FORBIDDEN');
    const list = await kit.call(
      `query { user(id: "${owner.user.id}") { media { edges { node { id } } } } }`,
      {},
      other.accessToken,
    );
    expect(codeOf(list)).toBe('FORBIDDEN');
    const deleted = await kit.call(
      'mutation D($id: ID!) { deleteMedia(id: $id) }',
      { id },
      other.accessToken,
    );
    expect(codeOf(deleted)).toBe('FORBIDDEN');

    const made = await kit.call(
      'mutation V($id: ID!) { setMediaVisibility(id: $id, visibility: PUBLIC) { visibility } }',
      { id },
      owner.accessToken,
    );
    expect(made.body.errors).toBeUndefined();
    expect((await mediaOf(undefined, id)).body.data?.media?.id).toBe(id);
    const mine = await kit.call<{ me: { media: { edges: Array<{ node: { id: string } }> } } }>(
      'query { me { media(kind: IMAGE) { edges { node { id } } } } }',
      {},
      owner.accessToken,
    );
    expect(mine.body.data?.me.media.edges.map((e) => e.node.id)).toEqual([id]);
  });

  it('refuses a download URL after its end, and one whose signature was altered', async () => {
    const person = await kit.signUp();
    const path = join(work.dir, 'expiry.png');
    await writePng(path, 64, 64);
    const { id } = await uploadFile(person.accessToken, 'expiry.png', 'image/png', await readFile(path));
    const media = await settled(person.accessToken, id);
    const thumbnail = media.variants.find((v) => v.name === 'thumbnail.webp');
    expect((await fetch(thumbnail?.url ?? '')).status).toBe(200);
    // A URL signed with the service's own keys that ended a minute ago.
    const signer = await serviceSigner();
    const ended = signer.downloadUrl(id, 'thumbnail.webp', -600);
    const expired = await fetch(ended);
    expect(expired.status).toBe(403);
    expect(((await expired.json()) as { errors: Array<{ message: string }> }).errors[0]?.message).toMatch(
      /expired/,
    );
    // The signature's first character (six whole bits of the MAC) changed.
    const altered = (thumbnail?.url ?? '').replace(
      /(t=[^.]+\.\d+\.)(.)/,
      (_, head: string, c: string) => `${head}${c === 'A' ? 'B' : 'A'}`,
    );
    expect((await fetch(altered)).status).toBe(403);
    // Another item's signature does not open this one.
    const other = thumbnail?.url.replace(id, '00000000-0000-7000-8000-000000000000') ?? '';
    expect((await fetch(other)).status).toBe(403);
  });

  it('finishes a file once when the media process is killed mid-processing (another run takes it over)', async () => {
    const person = await kit.signUp();
    const path = join(work.dir, 'long.mp4');
    await writeTestVideo(path, 30, ['-s', '1280x720']);
    const { id } = await uploadFile(person.accessToken, 'long.mp4', 'video/mp4', await readFile(path));
    await waitFor(
      async () => (await mediaOf(person.accessToken, id)).body.data?.media?.status === 'PROCESSING',
      30_000,
      'processing to start',
    );
    const status = (await (await fetch(`${system.orchestratorUrl}/v1/status`)).json()) as {
      processes: Array<{ service: string; pid: number }>;
    };
    const media = status.processes.find((p) => p.service === 'media');
    expect(media).toBeDefined();
    process.kill(media?.pid ?? 0, 'SIGKILL');
    const done = await settled(person.accessToken, id, 120_000);
    expect(done.status).toBe('READY');
    expect(done.durationSeconds).toBeGreaterThan(29);
    const lines = logOf(system.process.lines, 'media').filter((line) => line.mediaId === id);
    // Started by the killed process, started again by its successor, finished once.
    expect(lines.filter((line) => line.msg === 'media processing started').length).toBeGreaterThanOrEqual(2);
    expect(lines.filter((line) => line.msg === 'media processed')).toHaveLength(1);
    // Exactly one processed event was published for it (once the relay lease of the killed instance ended).
    await waitFor(
      async () => (await eventsOf(system.dataDir, 'aiva.media.media.processed.v1', id)) > 0,
      60_000,
      'the processed event',
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await eventsOf(system.dataDir, 'aiva.media.media.processed.v1', id)).toBe(1);
  });

  it("removes a deleted person's media and files", async () => {
    const person = await kit.signUp();
    const path = join(work.dir, 'gone.png');
    await writePng(path, 64, 64);
    const { id } = await uploadFile(person.accessToken, 'gone.png', 'image/png', await readFile(path));
    const media = await settled(person.accessToken, id);
    const folder = join(system.dataDir, 'media', 'files', 'owners', person.user.id);
    expect((await readdirDeep(folder)).length).toBeGreaterThan(0);
    const deleted = await kit.call(
      'mutation D($id: ID!) { deleteUser(id: $id) }',
      { id: person.user.id },
      person.accessToken,
    );
    expect(deleted.body.errors).toBeUndefined();
    await waitFor(async () => (await readdirDeep(folder)).length === 0, 30_000, 'the files to go');
    expect((await fetch(media.variants[0]?.url ?? '')).status).toBe(404);
  });
});

/** Every file under `dir` (recursively), as paths relative to it; none when it does not exist. */
async function readdirDeep(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** How many events of `type` about `id` the embedded event log holds (deduplicated by event id there). */
async function eventsOf(dataDir: string, type: string, id: string): Promise<number> {
  const db = openSqliteDatabase(join(dataDir, 'events.sqlite'), { readonly: true });
  try {
    const rows = db.prepare('SELECT payload FROM bus_events WHERE type = ?').all(type) as Array<{
      payload: string;
    }>;
    return rows.filter((row) => (JSON.parse(row.payload) as { data: { id: string } }).data.id === id).length;
  } finally {
    db.close();
  }
}
