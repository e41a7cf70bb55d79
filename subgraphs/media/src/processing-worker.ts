import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { type AivaEvent, createEvent, errorMessage, type Logger, WorkLoop } from '@aiva/shared';
import { Counter, Histogram, type Registry } from 'prom-client';
import { contentFolder, EVENT_SOURCE } from './media.service.js';
import {
  MediaRejectedError,
  type ProcessLimits,
  type ProcessResult,
  processFile,
  sniffFile,
} from './processing/index.js';
import type { FileStorage } from './storage/index.js';
import type { MediaRecord, MediaStore, MediaVariant, ProcessedFacts } from './store/media.store.js';

export interface ProcessingWorkerOptions {
  store: MediaStore;
  storage: FileStorage;
  limits: ProcessLimits;
  /** Files processed at once (MEDIA_PROCESSING_CONCURRENCY). */
  concurrency: number;
  /** How long a claim holds without renewal (MEDIA_PROCESSING_LEASE_MS); renewed every third of it. */
  leaseMs: number;
  /** Attempts after transient failures (MEDIA_PROCESSING_MAX_ATTEMPTS). */
  maxAttempts: number;
  /** First retry delay, doubling per attempt, in ms (default 5000). */
  retryBaseMs?: number;
  /** Where work directories are made (default the OS temp dir). */
  workRoot?: string;
  pollMs?: number;
  /** An event was written to the outbox. */
  onEvent?(): void;
  /** Runs before each claim (housekeeping such as expired uploads). */
  housekeeping?(): Promise<void>;
  /** A signed URL of an item's extracted text, for the processed event (other services index it). */
  textUrlOf?(mediaId: string): string;
  logger?: Logger;
}

/** The claim was lost (taken over after the lease ended, or the item deleted): the work is abandoned. */
class ClaimLostError extends Error {}

/**
 * Works through the processing queue: claims items whose uploaded event was consumed (held by a renewed lease,
 * so several instances share the work and a dead one's items are taken over), makes their renditions into
 * storage under the content's folder, and records READY or FAILED with the processed event, once: only the
 * holder of the current claim can record an outcome. A refused file (not what it claims, too large, unreadable)
 * fails at once; other errors are retried with backoff, then fail.
 */
export class ProcessingWorker {
  private readonly loop: WorkLoop<MediaRecord>;
  private readonly outcomes = new Counter({
    name: 'aiva_media_processed_total',
    help: 'Media processing runs by kind and outcome (ready, failed, retrying, reused)',
    labelNames: ['kind', 'outcome'],
    registers: [],
  });
  private readonly seconds = new Histogram({
    name: 'aiva_media_processing_seconds',
    help: 'Time to process one file, by kind',
    labelNames: ['kind'],
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180, 600],
    registers: [],
  });

  constructor(private readonly options: ProcessingWorkerOptions) {
    this.loop = new WorkLoop({
      label: 'media processing',
      claim: (limit) => this.claim(limit),
      work: (record) => this.process(record),
      concurrency: options.concurrency,
      ...(options.housekeeping ? { beforeClaim: options.housekeeping } : {}),
      ...(options.pollMs !== undefined ? { pollMs: options.pollMs } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
  }

  register(registry: Registry): void {
    registry.registerMetric(this.outcomes);
    registry.registerMetric(this.seconds);
  }

  start(): void {
    this.loop.start();
  }

  notify(): void {
    this.loop.notify();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** The claim token of this worker's current claims, by item. */
  private readonly tokens = new Map<string, string>();

  private async claim(limit: number): Promise<MediaRecord[]> {
    const token = randomUUID();
    const now = new Date();
    const claimed = await this.options.store.claimDue(
      now,
      new Date(now.getTime() + this.options.leaseMs),
      token,
      limit,
    );
    for (const record of claimed) this.tokens.set(record.id, token);
    return claimed;
  }

  private async process(record: MediaRecord): Promise<void> {
    const token = this.tokens.get(record.id) ?? '';
    const { logger } = this.options;
    const started = process.hrtime.bigint();
    let progress: number | null = null;
    let lost = false;
    const renew = async () => {
      const until = new Date(Date.now() + this.options.leaseMs);
      if (!(await this.options.store.renewLease(record.id, token, until, progress))) lost = true;
    };
    const heartbeat = setInterval(
      () => {
        renew().catch((error) =>
          logger?.warn({ mediaId: record.id, err: errorMessage(error) }, 'lease renewal failed'),
        );
      },
      Math.max(250, Math.floor(this.options.leaseMs / 3)),
    );
    logger?.info(
      { mediaId: record.id, kind: record.kind, attempt: record.attempts + 1 },
      'media processing started',
    );
    const workDir = await mkdtemp(join(this.options.workRoot ?? tmpdir(), 'aiva-media-'));
    try {
      const outcome = await this.run(record, workDir, (fraction) => {
        progress = Math.round(fraction * 100) / 100;
      });
      if (lost) throw new ClaimLostError('the claim was lost');
      const at = new Date();
      const done = await this.options.store.finishProcessing(
        record.id,
        token,
        { status: 'READY', facts: outcome.facts },
        this.processedEvent(record, { status: 'READY', facts: outcome.facts }, at),
        at,
      );
      if (!done) throw new ClaimLostError('the claim was lost');
      this.options.onEvent?.();
      this.outcomes.inc({ kind: outcome.facts.kind, outcome: outcome.reused ? 'reused' : 'ready' });
      logger?.info(
        { mediaId: record.id, kind: outcome.facts.kind, variants: outcome.facts.variants.length },
        'media processed',
      );
    } catch (error) {
      await this.failed(record, token, error);
    } finally {
      clearInterval(heartbeat);
      this.tokens.delete(record.id);
      this.seconds.observe({ kind: record.kind }, Number(process.hrtime.bigint() - started) / 1e9);
      await rm(workDir, { recursive: true, force: true });
    }
  }

  /** Processes one item, or reuses the renditions of an identical file of the same person. */
  private async run(
    record: MediaRecord,
    workDir: string,
    onProgress: (fraction: number) => void,
  ): Promise<{ facts: ProcessedFacts; reused: boolean }> {
    const { store, storage } = this.options;
    if (!record.sourceKey || !record.sha256) throw new Error(`media ${record.id} has no stored bytes`);
    const twin = await store.findReadyBySha(record.ownerId, record.sha256, record.id);
    if (twin) return { facts: factsOf(twin), reused: true };

    const input = join(workDir, 'source');
    await storage.download(record.sourceKey, input);
    const sniffed = await sniffFile(input);
    const result = await processFile(input, sniffed, workDir, this.options.limits, onProgress);
    const folder = contentFolder(record.ownerId, record.sha256);
    const variants = await Promise.all(result.variants.map((variant) => this.store(folder, variant)));
    const text = result.text ? await this.storeText(folder, result.text) : null;
    return { facts: toFacts(result, variants, text), reused: false };
  }

  private async store(folder: string, variant: ProcessResult['variants'][number]): Promise<MediaVariant> {
    // The file's name in the work directory (`thumbnail.webp`, `thumbnail.avif`, `poster.webp`) is unique per
    // rendition; the pipeline's `name` is shared by the formats of one size.
    const name = basename(variant.path);
    const key = `${folder}/${name}`;
    const { size } = await this.options.storage.putFile(key, variant.path, { contentType: variant.mimeType });
    return { name, key, mimeType: variant.mimeType, width: variant.width, height: variant.height, size };
  }

  private async storeText(folder: string, text: NonNullable<ProcessResult['text']>) {
    const key = `${folder}/text.txt`;
    await this.options.storage.putFile(key, text.path, { contentType: 'text/plain; charset=utf-8' });
    return { key, length: text.length };
  }

  /** A refusal fails at once; a lost claim is left to its new holder; anything else is retried, then fails. */
  private async failed(record: MediaRecord, token: string, error: unknown): Promise<void> {
    const { logger, store } = this.options;
    if (error instanceof ClaimLostError) {
      logger?.warn({ mediaId: record.id }, 'media processing abandoned: another worker holds it now');
      return;
    }
    const attempts = record.attempts + 1;
    const refused = error instanceof MediaRejectedError;
    const at = new Date();
    if (!refused && attempts < this.options.maxAttempts) {
      const delay = (this.options.retryBaseMs ?? 5000) * 2 ** (attempts - 1);
      await store.retryProcessing(record.id, token, attempts, new Date(at.getTime() + delay), at);
      this.outcomes.inc({ kind: record.kind, outcome: 'retrying' });
      logger?.warn(
        { mediaId: record.id, attempts, err: errorMessage(error) },
        'media processing failed; will retry',
      );
      return;
    }
    const reason = refused ? error.message : 'The file could not be processed';
    const outcome = { status: 'FAILED' as const, reason };
    const done = await store.finishProcessing(
      record.id,
      token,
      outcome,
      this.processedEvent(record, outcome, at),
      at,
    );
    if (done) this.options.onEvent?.();
    this.outcomes.inc({ kind: record.kind, outcome: 'failed' });
    logger?.[refused ? 'info' : 'error'](
      { mediaId: record.id, attempts, err: errorMessage(error) },
      refused ? 'media refused' : 'media processing failed',
    );
  }

  private processedEvent(
    record: MediaRecord,
    outcome: { status: 'READY'; facts: ProcessedFacts } | { status: 'FAILED'; reason: string },
    at: Date,
  ): AivaEvent {
    const facts = outcome.status === 'READY' ? outcome.facts : null;
    return createEvent('aiva.media.media.processed.v1', EVENT_SOURCE, {
      id: record.id,
      ownerId: record.ownerId,
      kind: facts?.kind ?? record.kind,
      mimeType: record.mimeType,
      status: outcome.status,
      failureReason: outcome.status === 'FAILED' ? outcome.reason : null,
      pageCount: facts?.pageCount ?? null,
      durationSeconds: facts?.durationSeconds ?? null,
      textKey: facts?.textKey ?? null,
      textLength: facts?.textLength ?? null,
      filename: record.filename,
      textUrl: facts?.textKey && this.options.textUrlOf ? this.options.textUrlOf(record.id) : null,
      processedAt: at.toISOString(),
    });
  }
}

function factsOf(record: MediaRecord): ProcessedFacts {
  return {
    kind: record.kind,
    width: record.width,
    height: record.height,
    durationSeconds: record.durationSeconds,
    pageCount: record.pageCount,
    variants: record.variants,
    textKey: record.textKey,
    textLength: record.textLength,
  };
}

function toFacts(
  result: ProcessResult,
  variants: MediaVariant[],
  text: { key: string; length: number } | null,
): ProcessedFacts {
  return {
    kind: result.kind,
    width: result.width,
    height: result.height,
    durationSeconds: result.durationSeconds,
    pageCount: result.pageCount,
    variants,
    textKey: text?.key ?? null,
    textLength: text?.length ?? null,
  };
}
