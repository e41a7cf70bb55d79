import { join } from 'node:path';
import sharp, { type Metadata, type Sharp } from 'sharp';
import { MediaRejectedError } from './errors.js';
import type { ProcessedVariant, ProcessResult } from './process.js';

/** Limits for one image. */
export interface ImageLimits {
  /** Largest accepted width × height (after reading the header only). */
  maxPixels: number;
  /** Wall-clock budget for the whole image, in ms; each sharp pipeline gets what is left (default 120 s). */
  timeoutMs?: number;
}

/** Server-wide sharp settings. */
export interface SharpSettings {
  /** libvips threads per pipeline; default: libvips' own choice (number of cores). */
  concurrency?: number;
}

let sharpConfigured = false;

/**
 * Applies server settings to sharp: no operation cache (a server sees each image once, the cache only holds
 * memory) and, optionally, fewer libvips threads so that image work leaves room for the rest of the process.
 * processImage applies the defaults itself on first use; call this at start-up to choose the concurrency.
 */
export function configureSharp(settings: SharpSettings = {}): void {
  sharp.cache(false);
  if (settings.concurrency !== undefined) sharp.concurrency(settings.concurrency);
  sharpConfigured = true;
}

function ensureSharpConfigured(): void {
  if (!sharpConfigured) configureSharp();
}

/** The sized variants: longest side in pixels. */
export const IMAGE_SIZES = [
  { name: 'thumbnail', size: 256 },
  { name: 'medium', size: 1024 },
  { name: 'large', size: 2048 },
] as const;

/** AVIF is slow to encode; a low effort keeps a 2048 px variant within a second or two. */
const AVIF_OPTIONS = { quality: 55, effort: 3 } as const;
const WEBP_OPTIONS = { quality: 82, effort: 4 } as const;

type OutputFormat = 'jpeg' | 'png' | 'webp' | 'avif';

const MIME_OF_FORMAT: Record<OutputFormat, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  avif: 'image/avif',
};

const EXT_OF_FORMAT: Record<OutputFormat, string> = { jpeg: 'jpg', png: 'png', webp: 'webp', avif: 'avif' };

/**
 * The format the `original` variant is re-encoded to: the same family where browsers show it, PNG otherwise.
 * GIF becomes a PNG of its first frame (animation is dropped, as it is for animated WebP input: sharp reads the
 * first page only); TIFF becomes PNG.
 */
function originalFormat(inputFormat: string | undefined): OutputFormat {
  switch (inputFormat) {
    case 'jpeg':
      return 'jpeg';
    case 'webp':
      return 'webp';
    case 'heif':
      return 'avif';
    default:
      return 'png';
  }
}

function applyFormat(pipeline: Sharp, format: OutputFormat, original: boolean): Sharp {
  switch (format) {
    case 'jpeg':
      return pipeline.jpeg({ quality: 88, mozjpeg: true });
    case 'png':
      return pipeline.png({ compressionLevel: 8 });
    case 'webp':
      return pipeline.webp(original ? { quality: 90, effort: 4 } : WEBP_OPTIONS);
    case 'avif':
      return pipeline.avif(original ? { quality: 65, effort: 3 } : AVIF_OPTIONS);
  }
}

/** Input description for writeImageVariant. */
export interface VariantSpec {
  name: string;
  format: OutputFormat;
  /** Longest side; omitted for a full-size re-encode. Never enlarges. */
  maxSide?: number;
  /** The variant is the full-size re-encode (higher quality settings). */
  original?: boolean;
}

/** Options shared by every pipeline reading the same input. */
export interface PipelineOptions {
  maxPixels: number;
  /** Absolute time (Date.now() based) by which the work must be done. */
  deadline: number;
}

function remainingSeconds(deadline: number): number {
  const left = deadline - Date.now();
  if (left <= 0) throw new MediaRejectedError('PROCESSING_TIMEOUT', 'Processing the image took too long');
  return Math.max(1, Math.ceil(left / 1000));
}

/** sharp reports its own decode failures as plain Errors without an errno `code`; fs failures carry one. */
function isFileSystemError(error: unknown): boolean {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
}

function toImageError(error: unknown): unknown {
  if (error instanceof MediaRejectedError || isFileSystemError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/timeout/i.test(message)) {
    return new MediaRejectedError('PROCESSING_TIMEOUT', 'Processing the image took too long', {
      cause: error,
    });
  }
  if (/pixel limit/i.test(message)) {
    return new MediaRejectedError('IMAGE_TOO_LARGE', 'The image has too many pixels', { cause: error });
  }
  return new MediaRejectedError('UNREADABLE_IMAGE', 'The image could not be read', { cause: error });
}

/**
 * Decodes `input` (a path or an encoded buffer), auto-orients it, strips all metadata (sharp writes none unless
 * asked: no EXIF, GPS, XMP, IPTC or ICC — pixels are converted to sRGB), resizes and encodes one variant into
 * `workDir`. Every pipeline carries `limitInputPixels` and a sharp timeout, as defence in depth.
 */
export async function writeImageVariant(
  input: string | Buffer,
  workDir: string,
  spec: VariantSpec,
  options: PipelineOptions,
): Promise<ProcessedVariant> {
  const path = join(workDir, `${spec.name}.${EXT_OF_FORMAT[spec.format]}`);
  try {
    let pipeline = sharp(input, { limitInputPixels: options.maxPixels, failOn: 'error' })
      .autoOrient()
      .timeout({ seconds: remainingSeconds(options.deadline) });
    if (spec.maxSide !== undefined) {
      pipeline = pipeline.resize(spec.maxSide, spec.maxSide, { fit: 'inside', withoutEnlargement: true });
    }
    const info = await applyFormat(pipeline, spec.format, spec.original === true).toFile(path);
    return {
      name: spec.name,
      path,
      mimeType: MIME_OF_FORMAT[spec.format],
      width: info.width,
      height: info.height,
      size: info.size,
    };
  } catch (error) {
    throw toImageError(error);
  }
}

/** Oriented dimensions and format from the header only; nothing is decoded. */
export interface ImageHeader {
  width: number;
  height: number;
  format: string | undefined;
}

/**
 * Reads the image header (libvips opens lazily: `metadata()` parses headers, it does not decode pixels) and
 * refuses images above `maxPixels` before any decode, so a small "decompression bomb" costs nothing.
 */
export async function readImageHeader(input: string | Buffer, maxPixels: number): Promise<ImageHeader> {
  let metadata: Metadata;
  try {
    metadata = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new MediaRejectedError('UNREADABLE_IMAGE', 'The image could not be read', { cause: error });
  }
  const { width, height } = metadata;
  if (!(width > 0 && height > 0)) throw new MediaRejectedError('UNREADABLE_IMAGE', 'The image has no size');
  if (width * height > maxPixels) {
    throw new MediaRejectedError(
      'IMAGE_TOO_LARGE',
      `The image is ${width} × ${height} pixels, more than the ${maxPixels} pixels allowed`,
    );
  }
  return { width: metadata.autoOrient.width, height: metadata.autoOrient.height, format: metadata.format };
}

/** The variants to make for an image of this (oriented) size: sizes above the original are skipped. */
function plannedVariants(header: ImageHeader): VariantSpec[] {
  const longest = Math.max(header.width, header.height);
  const specs: VariantSpec[] = [{ name: 'original', format: originalFormat(header.format), original: true }];
  for (const { name, size } of IMAGE_SIZES) {
    if (name !== 'thumbnail' && size > longest) continue;
    specs.push({ name, format: 'webp', maxSide: size }, { name, format: 'avif', maxSide: size });
  }
  return specs;
}

/**
 * Image pipeline: header check, then `original` (full size, same family: JPEG→JPEG, PNG→PNG, WebP→WebP,
 * AVIF→AVIF, GIF→PNG first frame, TIFF→PNG) and `thumbnail` (256), `medium` (1024), `large` (2048) as WebP and
 * AVIF, all oriented and without metadata. Files are named `<name>.<ext>` in `workDir`.
 */
export async function processImage(
  input: string,
  workDir: string,
  limits: ImageLimits,
): Promise<ProcessResult> {
  ensureSharpConfigured();
  const header = await readImageHeader(input, limits.maxPixels);
  const options: PipelineOptions = {
    maxPixels: limits.maxPixels,
    deadline: Date.now() + (limits.timeoutMs ?? 120_000),
  };
  const variants: ProcessedVariant[] = [];
  for (const spec of plannedVariants(header)) {
    variants.push(await writeImageVariant(input, workDir, spec, options));
  }
  return {
    kind: 'IMAGE',
    width: header.width,
    height: header.height,
    durationSeconds: null,
    pageCount: null,
    variants,
  };
}
