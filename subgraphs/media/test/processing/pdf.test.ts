import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isMediaRejectedError,
  type ProcessLimits,
  processFile,
  processPdf,
  sniffFile,
} from '../../src/processing/index.js';
import { buildPdf, makeTempDir } from './fixtures.js';

const LIMITS: ProcessLimits = {
  maxPixels: 50_000_000,
  maxDurationSeconds: 60,
  maxPages: 50,
  maxTextChars: 100_000,
  timeoutMs: 60_000,
};

describe('document pipeline', { timeout: 60_000 }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    ({ dir, cleanup } = await makeTempDir('pdf'));
  });
  afterAll(async () => {
    await cleanup();
  });

  async function workDir(name: string): Promise<string> {
    const path = join(dir, name);
    await mkdir(path);
    return path;
  }

  it('counts pages, extracts text and renders the first page', async () => {
    const input = join(dir, 'two-pages.pdf');
    await writeFile(input, buildPdf(['Hello aardvark (page one)', 'Goodbye zebra on page two']));
    const work = await workDir('two-out');
    const result = await processFile(input, await sniffFile(input), work, LIMITS);

    expect(result).toMatchObject({
      kind: 'DOCUMENT',
      pageCount: 2,
      width: 612,
      height: 792,
      durationSeconds: null,
    });
    const text = await readFile(result.text!.path, 'utf8');
    expect(result.text).toEqual({ path: join(work, 'text.txt'), length: text.length });
    expect(text).toContain('Hello aardvark (page one)');
    expect(text).toContain('Goodbye zebra on page two');

    expect(result.variants.map((v) => `${v.name}:${v.mimeType}`)).toEqual([
      'page-1:image/webp',
      'preview:image/webp',
    ]);
    const thumb = result.variants[0]!;
    expect(thumb.width).toBeLessThanOrEqual(256);
    expect(thumb.height).toBe(256);
    const meta = await sharp(thumb.path).metadata();
    expect([meta.width, meta.height]).toEqual([thumb.width, thumb.height]);
    const preview = result.variants[1]!;
    expect(Math.max(preview.width!, preview.height!)).toBeGreaterThan(900);
    expect(Math.max(preview.width!, preview.height!)).toBeLessThanOrEqual(1024);
    // The render is not blank: the text draws dark pixels on the white page.
    const stats = await sharp(preview.path).stats();
    expect(stats.channels[0]!.min).toBeLessThan(128);
  });

  it('parses at most maxPages pages for text and caps the text length', async () => {
    const input = join(dir, 'three-pages.pdf');
    await writeFile(input, buildPdf(['alpha words', 'beta words', 'gamma words']));
    const result = await processPdf(input, await workDir('three-out'), {
      maxPages: 2,
      maxTextChars: 1000,
      maxPixels: LIMITS.maxPixels,
      timeoutMs: LIMITS.timeoutMs,
    });
    expect(result.pageCount).toBe(3);
    const text = await readFile(result.text!.path, 'utf8');
    expect(text).toContain('beta');
    expect(text).not.toContain('gamma');

    const capped = await processPdf(input, await workDir('capped-out'), {
      maxPages: 10,
      maxTextChars: 5,
      maxPixels: LIMITS.maxPixels,
      timeoutMs: LIMITS.timeoutMs,
    });
    expect(capped.text?.length).toBe(5);
    expect(await readFile(capped.text!.path, 'utf8')).toBe('alpha');
  });

  it('refuses truncated, garbage and password-protected files with a PDF header', async () => {
    const whole = buildPdf(['soon cut off']);
    const cases = {
      'encrypted.pdf': buildPdf(['secret'], { encrypted: true }),
      'truncated.pdf': whole.subarray(0, 60),
      'garbage.pdf': Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(3000, 0x41)]),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      const input = join(dir, name);
      await writeFile(input, bytes);
      const sniffed = await sniffFile(input);
      expect(sniffed.kind, name).toBe('DOCUMENT');
      const error = await processFile(input, sniffed, await workDir(`${name}-out`), LIMITS).catch(
        (e: unknown) => e,
      );
      expect(isMediaRejectedError(error) && error.reason, name).toBe('UNREADABLE_DOCUMENT');
    }
  });

  it('reads in a worker: the deadline terminates it, and a document that needs more than its heap is refused', async () => {
    const input = join(dir, 'bounded.pdf');
    await writeFile(input, buildPdf(Array.from({ length: 40 }, (_, i) => `Page ${i + 1} of a long report`)));
    const late = await processPdf(input, await workDir('late'), { ...LIMITS, timeoutMs: 5 }).catch((e) => e);
    expect(isMediaRejectedError(late) && late.reason).toBe('PROCESSING_TIMEOUT');
    const starved = await processPdf(input, await workDir('starved'), { ...LIMITS, maxHeapMb: 1 }).catch(
      (e) => e,
    );
    expect(isMediaRejectedError(starved) && starved.reason).toBe('UNREADABLE_DOCUMENT');
    // This process is unharmed: the same document reads within normal limits.
    const read = await processPdf(input, await workDir('normal'), LIMITS);
    expect(read.pageCount).toBe(40);
  });
});
