import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isMediaRejectedError,
  type ProcessLimits,
  type ProcessResult,
  processFile,
  processImage,
  sniffFile,
} from '../../src/processing/index.js';
import { exifHasGps, makeTempDir, writeJpegWithGps, writePng, writePngBomb } from './fixtures.js';

const LIMITS: ProcessLimits = {
  maxPixels: 50_000_000,
  maxDurationSeconds: 60,
  maxPages: 50,
  maxTextChars: 100_000,
  timeoutMs: 60_000,
};

function variantNames(result: ProcessResult): string[] {
  return result.variants.map((v) => `${v.name}:${v.mimeType}`).sort();
}

async function expectNoMetadata(result: ProcessResult): Promise<void> {
  for (const variant of result.variants) {
    const meta = await sharp(variant.path).metadata();
    expect(meta.exif, variant.path).toBeUndefined();
    expect(meta.xmp, variant.path).toBeUndefined();
    expect(meta.iptc, variant.path).toBeUndefined();
    expect(meta.width, variant.path).toBe(variant.width);
    expect(meta.height, variant.path).toBe(variant.height);
    expect(variant.size).toBeGreaterThan(0);
  }
}

describe('image pipeline', { timeout: 120_000 }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    ({ dir, cleanup } = await makeTempDir('image'));
  });
  afterAll(async () => {
    await cleanup();
  });

  it('strips GPS EXIF from every variant and makes the sizes the original allows', async () => {
    const input = join(dir, 'gps.jpg');
    await writeJpegWithGps(input, 1600, 1200);
    const fixtureExif = (await sharp(input).metadata()).exif;
    expect(fixtureExif && exifHasGps(fixtureExif)).toBe(true);

    const work = join(dir, 'gps-out');
    await mkdir(work);
    const result = await processFile(input, await sniffFile(input), work, LIMITS);

    expect(result).toMatchObject({ kind: 'IMAGE', width: 1600, height: 1200, durationSeconds: null });
    // 2048 is larger than the original (1600), so `large` is skipped.
    expect(variantNames(result)).toEqual([
      'medium:image/avif',
      'medium:image/webp',
      'original:image/jpeg',
      'thumbnail:image/avif',
      'thumbnail:image/webp',
    ]);
    const byName = (name: string, mime: string) =>
      result.variants.find((v) => v.name === name && v.mimeType === mime);
    expect(byName('original', 'image/jpeg')).toMatchObject({ width: 1600, height: 1200 });
    expect(byName('thumbnail', 'image/webp')).toMatchObject({ width: 256, height: 192 });
    expect(byName('medium', 'image/avif')).toMatchObject({ width: 1024, height: 768 });
    expect(byName('thumbnail', 'image/webp')?.path).toBe(join(work, 'thumbnail.webp'));
    await expectNoMetadata(result);
  });

  it('applies EXIF orientation 6: a 400×300 landscape comes out 300×400', async () => {
    const input = join(dir, 'rotated.jpg');
    await writeJpegWithGps(input, 400, 300, 6);
    expect((await sharp(input).metadata()).orientation).toBe(6);
    const work = join(dir, 'rotated-out');
    await mkdir(work);
    const result = await processImage(input, work, { maxPixels: LIMITS.maxPixels });
    expect(result).toMatchObject({ width: 300, height: 400 });
    const original = result.variants.find((v) => v.name === 'original');
    expect(original).toMatchObject({ width: 300, height: 400, mimeType: 'image/jpeg' });
    expect((await sharp(original!.path).metadata()).orientation).toBeUndefined();
    // thumbnail is kept for small images but never enlarged; medium/large are skipped.
    expect(variantNames(result)).toEqual([
      'original:image/jpeg',
      'thumbnail:image/avif',
      'thumbnail:image/webp',
    ]);
    expect(result.variants.find((v) => v.name === 'thumbnail')).toMatchObject({ width: 192, height: 256 });
    await expectNoMetadata(result);
  });

  it('keeps a PNG a PNG and never enlarges a tiny thumbnail', async () => {
    const input = join(dir, 'tiny.png');
    await writePng(input, 100, 50);
    const work = join(dir, 'tiny-out');
    await mkdir(work);
    const result = await processImage(input, work, { maxPixels: LIMITS.maxPixels });
    expect(result.variants.find((v) => v.name === 'original')).toMatchObject({
      mimeType: 'image/png',
      width: 100,
    });
    expect(result.variants.find((v) => v.name === 'thumbnail')).toMatchObject({ width: 100, height: 50 });
  });

  it('re-encodes the original in the same family (GIF and TIFF become PNG)', async () => {
    const cases = [
      ['gif', 'image/png'],
      ['webp', 'image/webp'],
      ['avif', 'image/avif'],
      ['tiff', 'image/png'],
    ] as const;
    for (const [format, expected] of cases) {
      const input = join(dir, `in.${format}`);
      await sharp({ create: { width: 300, height: 200, channels: 3, background: '#3a6' } })
        .toFormat(format)
        .toFile(input);
      const sniffed = await sniffFile(input);
      expect(sniffed.kind, format).toBe('IMAGE');
      const work = join(dir, `${format}-out`);
      await mkdir(work);
      const result = await processFile(input, sniffed, work, LIMITS);
      expect(
        result.variants.find((v) => v.name === 'original'),
        format,
      ).toMatchObject({
        mimeType: expected,
        width: 300,
        height: 200,
      });
      await expectNoMetadata(result);
    }
  });

  it('refuses a 50,000 × 50,000 PNG bomb from its header, without decoding it', async () => {
    const input = join(dir, 'bomb.png');
    await writePngBomb(input, 50_000);
    expect((await stat(input)).size).toBeLessThan(2 * 1024 * 1024);
    expect(await sniffFile(input)).toMatchObject({ mimeType: 'image/png' });
    const work = join(dir, 'bomb-out');
    await mkdir(work);
    const rssBefore = process.memoryUsage().rss;
    const error = await processImage(input, work, { maxPixels: LIMITS.maxPixels }).catch((e: unknown) => e);
    const rssAfter = process.memoryUsage().rss;
    expect(isMediaRejectedError(error) && error.reason).toBe('IMAGE_TOO_LARGE');
    // Refused by the header check (which names the size), not by a decoder that already started.
    expect((error as Error).message).toContain('50000 × 50000');
    expect(rssAfter - rssBefore).toBeLessThan(200 * 1024 * 1024);
    expect(await readdir(work)).toEqual([]);
  });

  it('refuses bytes that only look like an image', async () => {
    const input = join(dir, 'broken.png');
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#888' } })
      .png()
      .toBuffer();
    await writeFile(input, png.subarray(0, 40));
    const work = join(dir, 'broken-out');
    await mkdir(work);
    const error = await processImage(input, work, { maxPixels: LIMITS.maxPixels }).catch((e: unknown) => e);
    expect(isMediaRejectedError(error) && error.reason).toBe('UNREADABLE_IMAGE');
  });
});
