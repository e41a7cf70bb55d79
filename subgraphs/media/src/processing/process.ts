import { processAudioVideo } from './av.js';
import { processImage } from './image.js';
import { processPdf } from './pdf.js';
import type { MediaKind, Sniffed } from './sniff.js';

/** One output file written into the work directory; the integrator stores it next to the original. */
export interface ProcessedVariant {
  /** Stable name such as `thumbnail`, `poster`, `web`, `page-1`. Several variants may share a name (webp/avif). */
  name: string;
  path: string;
  mimeType: string;
  width: number | null;
  height: number | null;
  size: number;
}

/** Everything the pipelines learned about a file, in one shape for all kinds. */
export interface ProcessResult {
  /** Corrected kind: e.g. an audio-only webm/mp4 sniffed as VIDEO is AUDIO here. */
  kind: MediaKind;
  width: number | null;
  height: number | null;
  durationSeconds: number | null;
  pageCount: number | null;
  variants: ProcessedVariant[];
  /** Extracted text (documents), UTF-8, capped at maxTextChars characters. */
  text?: { path: string; length: number };
}

/** Limits applied while processing; exceeding one is a MediaRejectedError. */
export interface ProcessLimits {
  /** Largest width × height of an image or a video frame. */
  maxPixels: number;
  maxDurationSeconds: number;
  /** Pages of a document parsed for text (the page count is still reported in full). */
  maxPages: number;
  maxTextChars: number;
  /** Wall-clock budget for the whole file; exceeded → MediaRejectedError PROCESSING_TIMEOUT. */
  timeoutMs: number;
}

/** Tool paths, for deployments that bring their own ffmpeg/ffprobe. */
export interface ProcessOptions {
  ffmpegPath?: string;
  ffprobePath?: string;
}

/**
 * Processes a local file whose type was sniffed from its bytes, writing every output into `workDir` (which the
 * caller creates and removes). `onProgress` gets a fraction in [0, 1] where the work is long (video transcode).
 * Throws MediaRejectedError for files that must be refused; other errors are internal failures.
 */
export async function processFile(
  input: string,
  sniffed: Sniffed,
  workDir: string,
  limits: ProcessLimits,
  onProgress?: (fraction: number) => void,
  options: ProcessOptions = {},
): Promise<ProcessResult> {
  switch (sniffed.kind) {
    case 'IMAGE':
      return processImage(input, workDir, { maxPixels: limits.maxPixels, timeoutMs: limits.timeoutMs });
    case 'VIDEO':
    case 'AUDIO':
      return processAudioVideo(input, sniffed, workDir, {
        maxPixels: limits.maxPixels,
        maxDurationSeconds: limits.maxDurationSeconds,
        timeoutMs: limits.timeoutMs,
        ...(onProgress ? { onProgress } : {}),
        ...options,
      });
    case 'DOCUMENT':
      return processPdf(input, workDir, {
        maxPages: limits.maxPages,
        maxTextChars: limits.maxTextChars,
        maxPixels: limits.maxPixels,
        timeoutMs: limits.timeoutMs,
      });
  }
}
