import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { MediaRejectedError } from './errors.js';
import { writeImageVariant } from './image.js';
import type { ProcessedVariant, ProcessResult } from './process.js';

/** Limits of the document pipeline. */
export interface PdfLimits {
  /** Pages parsed for text; the page count is reported in full regardless. */
  maxPages: number;
  /** Extracted text is cut at this many characters (UTF-16 code units, never inside a surrogate pair). */
  maxTextChars: number;
  /** Passed to sharp for the rendered first page. */
  maxPixels: number;
  /** Wall-clock budget for the whole document, in ms. */
  timeoutMs: number;
  /** Heap of the worker reading the document, in MB (default 512). */
  maxHeapMb?: number;
}

/** Longest side of the first-page render; the preview is made from it. */
const RENDER_LONGEST_SIDE = 1024;

/** The worker (plain JavaScript beside src/ and dist/: `../../workers/` from either). */
const WORKER = new URL('../../workers/pdf-worker.mjs', import.meta.url);

interface WorkerAnswer {
  ok: boolean;
  message?: string;
  pageCount: number;
  width: number;
  height: number;
  text: string;
  png: Uint8Array;
}

function unreadable(cause?: unknown): MediaRejectedError {
  return new MediaRejectedError('UNREADABLE_DOCUMENT', 'The document could not be read', { cause });
}

/**
 * Reads the PDF in a worker thread (pdf.js through unpdf, page 1 rendered with @napi-rs/canvas): a hostile
 * document can neither block the event loop nor take the service's memory. Its heap is bounded, and at the
 * deadline it is terminated (PROCESSING_TIMEOUT); running out of its heap, or any parse error, refuses the
 * document (UNREADABLE_DOCUMENT).
 */
async function readInWorker(bytes: Buffer, limits: PdfLimits): Promise<WorkerAnswer> {
  const worker = new Worker(WORKER, {
    workerData: {
      bytes,
      maxPages: limits.maxPages,
      maxTextChars: limits.maxTextChars,
      renderLongestSide: RENDER_LONGEST_SIDE,
    },
    resourceLimits: { maxOldGenerationSizeMb: limits.maxHeapMb ?? 512 },
    // The worker's own output would bypass the service's log format.
    stdout: true,
    stderr: true,
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<WorkerAnswer>((resolve, reject) => {
      timer = setTimeout(() => {
        reject(new MediaRejectedError('PROCESSING_TIMEOUT', 'Processing the document took too long'));
      }, limits.timeoutMs);
      worker.once('message', (answer: WorkerAnswer) =>
        answer.ok ? resolve(answer) : reject(unreadable(new Error(answer.message))),
      );
      worker.once('error', (error) => reject(unreadable(error)));
      worker.once('exit', (code) => reject(unreadable(new Error(`the PDF worker exited (${code})`))));
    });
  } finally {
    clearTimeout(timer);
    await worker.terminate();
  }
}

/**
 * Document pipeline (PDF): page count, text of the first `maxPages` pages into `text.txt` (UTF-8, at most
 * `maxTextChars` characters), and page 1 rendered into `page-1.webp` (256 px) and `preview.webp` (1024 px).
 * width/height are page 1's size in PDF points. Encrypted or broken files → MediaRejectedError
 * UNREADABLE_DOCUMENT; over `timeoutMs` → PROCESSING_TIMEOUT.
 */
export async function processPdf(input: string, workDir: string, limits: PdfLimits): Promise<ProcessResult> {
  const deadline = Date.now() + limits.timeoutMs;
  const read = await readInWorker(await readFile(input), limits);
  const textPath = join(workDir, 'text.txt');
  await writeFile(textPath, read.text, 'utf8');
  const rendered = Buffer.from(read.png);
  const options = { maxPixels: limits.maxPixels, deadline };
  const variants: ProcessedVariant[] = [
    await writeImageVariant(rendered, workDir, { name: 'page-1', format: 'webp', maxSide: 256 }, options),
    await writeImageVariant(rendered, workDir, { name: 'preview', format: 'webp', maxSide: 1024 }, options),
  ];
  return {
    kind: 'DOCUMENT',
    width: Math.round(read.width),
    height: Math.round(read.height),
    durationSeconds: null,
    pageCount: read.pageCount,
    variants,
    text: { path: textPath, length: read.text.length },
  };
}
