import type { AivaEvent, OutboxStore, RecordFields } from '@aiva/shared';

export const MEDIA_KINDS = ['IMAGE', 'VIDEO', 'AUDIO', 'DOCUMENT'] as const;
export type MediaKind = (typeof MEDIA_KINDS)[number];

/**
 * The life of a media item: created by `createUpload`, `UPLOADED` when its bytes are stored and typed,
 * `PROCESSING` while a worker holds it, then `READY` or `FAILED` (with `failureReason`).
 */
export const MEDIA_STATUSES = ['AWAITING_UPLOAD', 'UPLOADED', 'PROCESSING', 'READY', 'FAILED'] as const;
export type MediaStatus = (typeof MEDIA_STATUSES)[number];

export type Visibility = 'PRIVATE' | 'PUBLIC';

/** One stored rendition (a thumbnail, a WebP, a poster frame, the web video, the extracted text). */
export interface MediaVariant {
  name: string;
  /** Its storage key. */
  key: string;
  mimeType: string;
  width: number | null;
  height: number | null;
  size: number;
}

/** One media item of one person. */
export interface MediaRecord {
  id: string; // UUIDv7: newest first is id descending
  ownerId: string;
  kind: MediaKind;
  /** Sanitised: safe in a Content-Disposition header and on any file system. */
  filename: string;
  /** Declared by the client until the bytes arrive; then the type sniffed from the bytes. */
  mimeType: string;
  /** Declared until the bytes arrive (the upload cannot be longer); then the stored size. */
  size: number;
  sha256: string | null;
  status: MediaStatus;
  failureReason: string | null;
  visibility: Visibility;
  width: number | null;
  height: number | null;
  durationSeconds: number | null;
  pageCount: number | null;
  variants: MediaVariant[];
  /** Storage key of the uploaded bytes (`owners/<owner>/<sha256>/source`): shared by identical files of a person. */
  sourceKey: string | null;
  /** Storage key of the extracted text of a document. */
  textKey: string | null;
  textLength: number | null;
  /** 0..1 while processing, when the pipeline can tell. */
  progress: number | null;
  /** Processing attempts made. */
  attempts: number;
  /** When processing is due (set when the uploaded event is consumed); null when nothing is queued. */
  nextAttemptAt: Date | null;
  /** Until when the worker that claimed it holds it; another takes it over after that. */
  leaseUntil: Date | null;
  /** The claim's token: only the holder of the current claim records an outcome (fencing). */
  leaseToken: string | null;
  /** The upload URL's end: an upload not finished by then is removed. */
  uploadExpiresAt: Date;
  createdAt: Date;
  updatedAt: Date;
}

export const MEDIA_FIELDS: RecordFields<MediaRecord> = {
  id: 'string',
  ownerId: 'string',
  kind: 'string',
  filename: 'string',
  mimeType: 'string',
  size: 'number',
  sha256: 'value',
  status: 'string',
  failureReason: 'value',
  visibility: 'string',
  width: 'value',
  height: 'value',
  durationSeconds: 'value',
  pageCount: 'value',
  variants: 'list',
  sourceKey: 'value',
  textKey: 'value',
  textLength: 'value',
  progress: 'value',
  attempts: 'number',
  nextAttemptAt: 'date?',
  leaseUntil: 'date?',
  leaseToken: 'value',
  uploadExpiresAt: 'date',
  createdAt: 'date',
  updatedAt: 'date',
};

export interface MediaPage {
  media: MediaRecord[];
  hasNextPage: boolean;
}

/** What the bytes turned out to be, recorded when an upload finishes. */
export interface UploadedFacts {
  kind: MediaKind;
  mimeType: string;
  size: number;
  sha256: string;
  sourceKey: string;
}

/** What processing found, recorded with `READY`. */
export interface ProcessedFacts {
  kind: MediaKind;
  width: number | null;
  height: number | null;
  durationSeconds: number | null;
  pageCount: number | null;
  variants: MediaVariant[];
  textKey: string | null;
  textLength: number | null;
}

/**
 * The media subgraph's store port (SQLite by default, MongoDB with MONGODB_URL). State changes that other
 * services must hear of commit together with their event (the outbox); consumed events apply once by id.
 */
export interface MediaStore extends OutboxStore {
  readonly kind: 'sqlite' | 'mongo';
  insert(record: MediaRecord): Promise<void>;
  find(id: string): Promise<MediaRecord | null>;
  findMany(ids: readonly string[]): Promise<MediaRecord[]>;
  /** A person's media, newest first, optionally of one kind. */
  listByOwner(
    ownerId: string,
    page: { first: number; beforeId?: string | null | undefined; kind?: MediaKind | undefined },
  ): Promise<MediaPage>;
  /** Bytes a person holds or has reserved (every item but FAILED ones whose bytes were never stored). */
  usedBytes(ownerId: string): Promise<number>;
  /** Another item of the person with a processed copy of the same bytes (to reuse its renditions). */
  findReadyBySha(ownerId: string, sha256: string, exceptId: string): Promise<MediaRecord | null>;
  /** How many items reference a source key (its files are removed with the last of them). */
  countBySourceKey(sourceKey: string): Promise<number>;
  /** AWAITING_UPLOAD → UPLOADED with the facts, and the uploaded event, in one transaction. False when not awaiting. */
  markUploaded(id: string, facts: UploadedFacts, event: AivaEvent, at: Date): Promise<boolean>;
  /** AWAITING_UPLOAD → FAILED (the bytes were refused and not stored). False when not awaiting. */
  markRejected(id: string, reason: string, facts: Partial<UploadedFacts>, at: Date): Promise<boolean>;
  /** Consumes an uploaded event once: queues the item for processing (due now). False for a duplicate. */
  queueProcessing(consumer: string, eventId: string, id: string, at: Date): Promise<boolean>;
  /**
   * Claims up to `limit` items due for processing whose lease is free or ended: marks them PROCESSING and leased
   * until `leaseUntil` under `token`. Atomic across instances.
   */
  claimDue(now: Date, leaseUntil: Date, token: string, limit: number): Promise<MediaRecord[]>;
  /** Extends the claim (and records progress); false when the claim was lost (taken over or deleted). */
  renewLease(id: string, token: string, leaseUntil: Date, progress: number | null): Promise<boolean>;
  /** PROCESSING → READY/FAILED with the facts and the processed event, if `token` still holds the claim. */
  finishProcessing(
    id: string,
    token: string,
    outcome: { status: 'READY'; facts: ProcessedFacts } | { status: 'FAILED'; reason: string },
    event: AivaEvent,
    at: Date,
  ): Promise<boolean>;
  /** A transient failure: the claim is released and the item is UPLOADED (queued) again, due at `nextAttemptAt`. */
  retryProcessing(
    id: string,
    token: string,
    attempts: number,
    nextAttemptAt: Date,
    at: Date,
  ): Promise<boolean>;
  setVisibility(id: string, visibility: Visibility, at: Date): Promise<MediaRecord | null>;
  /** Deletes the item and writes its deleted event, in one transaction; the removed record, or null. */
  delete(id: string, event: AivaEvent): Promise<MediaRecord | null>;
  /**
   * Consumes a person's deletion once: removes all their items, with one deleted event each (made by `eventOf`).
   * Returns the removed records, or 'duplicate'.
   */
  removeOwner(
    consumer: string,
    eventId: string,
    ownerId: string,
    eventOf: (record: MediaRecord) => AivaEvent,
  ): Promise<MediaRecord[] | 'duplicate'>;
  /** Removes uploads never finished by their URL's end; returns them (their staged bytes go too). */
  removeExpiredUploads(now: Date, limit: number): Promise<MediaRecord[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
