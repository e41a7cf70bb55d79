import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ALLOWED_TYPES,
  isMediaRejectedError,
  kindOfMimeType,
  type MediaRejectedError,
  sniffBuffer,
  sniffFile,
} from '../../src/processing/index.js';
import {
  buildPdf,
  makeTempDir,
  writeExecutableHead,
  writeJpegWithGps,
  writePng,
  writeTestAudio,
  writeTestVideo,
} from './fixtures.js';

async function rejection(promise: Promise<unknown>): Promise<MediaRejectedError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isMediaRejectedError(error)) throw new Error(`expected a MediaRejectedError, got ${String(error)}`);
  return error;
}

describe('sniffing', { timeout: 60_000 }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    ({ dir, cleanup } = await makeTempDir('sniff'));
  });
  afterAll(async () => {
    await cleanup();
  });

  it('trusts the bytes, not the name: PNG bytes in x.pdf are an image', async () => {
    const path = join(dir, 'x.pdf');
    await writePng(path, 32, 16);
    expect(await sniffFile(path)).toEqual({ mimeType: 'image/png', ext: 'png', kind: 'IMAGE' });
  });

  it('recognises the allowed families from real files', async () => {
    await writeJpegWithGps(join(dir, 'a.jpg'), 40, 30);
    await writeTestVideo(join(dir, 'v.mp4'), 1);
    await writeTestAudio(join(dir, 'a.mp3'), 1);
    await writeTestAudio(join(dir, 'a.wav'), 1);
    await writeFile(join(dir, 'd.bin'), buildPdf(['hello']));
    expect(await sniffFile(join(dir, 'a.jpg'))).toMatchObject({ mimeType: 'image/jpeg', kind: 'IMAGE' });
    expect(await sniffFile(join(dir, 'v.mp4'))).toMatchObject({ mimeType: 'video/mp4', kind: 'VIDEO' });
    expect(await sniffFile(join(dir, 'a.mp3'))).toMatchObject({ mimeType: 'audio/mpeg', kind: 'AUDIO' });
    expect(await sniffFile(join(dir, 'a.wav'))).toEqual({ mimeType: 'audio/wav', ext: 'wav', kind: 'AUDIO' });
    expect(await sniffFile(join(dir, 'd.bin'))).toEqual({
      mimeType: 'application/pdf',
      ext: 'pdf',
      kind: 'DOCUMENT',
    });
  });

  it('sniffs the head of a stream the same way', async () => {
    const head = (await readFile(join(dir, 'x.pdf'))).subarray(0, 4100);
    expect(await sniffBuffer(head)).toMatchObject({ mimeType: 'image/png', kind: 'IMAGE' });
  });

  it('refuses an executable (first 64 KiB of the node binary)', async () => {
    const path = join(dir, 'photo.jpg');
    await writeExecutableHead(path);
    const error = await rejection(sniffFile(path));
    expect(error.reason).toBe('TYPE_NOT_ALLOWED');
    expect(error.message).toMatch(/not allowed/);
  });

  it('refuses a shell script, HTML, SVG and a zip', async () => {
    const cases: Record<string, Buffer> = {
      'run.sh': Buffer.from('#!/bin/sh\nrm -rf /tmp/nothing\necho done\n'),
      'page.html': Buffer.from('<!doctype html><html><body><script>alert(1)</script></body></html>'),
      'pic.svg': Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>'),
    };
    for (const [name, bytes] of Object.entries(cases)) await writeFile(join(dir, name), bytes);
    // A zip: local file header signature + a stored empty entry is enough for file-type.
    const zip = Buffer.alloc(30 + 5);
    zip.writeUInt32LE(0x04034b50, 0);
    zip.writeUInt16LE(5, 26);
    zip.write('a.txt', 30, 'latin1');
    await writeFile(join(dir, 'archive.jpg'), zip);
    for (const name of [...Object.keys(cases), 'archive.jpg']) {
      const error = await rejection(sniffFile(join(dir, name)));
      expect(error.reason, name).toBe('TYPE_NOT_ALLOWED');
    }
  });

  it('maps declared types, with aliases and parameters, to kinds', () => {
    expect(kindOfMimeType('image/JPEG')).toBe('IMAGE');
    expect(kindOfMimeType('audio/ogg; codecs=opus')).toBe('AUDIO');
    expect(kindOfMimeType('audio/x-wav')).toBe('AUDIO');
    expect(kindOfMimeType('video/matroska')).toBe('VIDEO');
    expect(kindOfMimeType('application/pdf')).toBe('DOCUMENT');
    expect(kindOfMimeType('application/x-msdownload')).toBeUndefined();
    expect(kindOfMimeType('image/svg+xml')).toBeUndefined();
    expect(kindOfMimeType('toString')).toBeUndefined();
    expect(Object.keys(ALLOWED_TYPES)).toContain('video/x-matroska');
  });
});
