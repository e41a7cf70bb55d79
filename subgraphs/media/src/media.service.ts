import {
  type AivaEvent,
  badUserInput,
  createEvent,
  forbidden,
  type Logger,
  notFound,
  ROLE_ADMIN,
  ROLE_SERVICE,
  uuidv7,
  type Viewer,
} from '@aiva/shared';
import { sanitizeFilename } from './filenames.js';
import type { FileStorage } from './storage/index.js';
import type {
  MediaKind,
  MediaPage,
  MediaRecord,
  MediaStore,
  UploadedFacts,
  Visibility,
} from './store/media.store.js';

/** The source of the events media publishes. */
export const EVENT_SOURCE = 'media';

/** Limits of uploads: the largest file per kind and what one person may hold. */
export interface UploadLimits {
  maxBytes: Record<MediaKind, number>;
  quotaBytes: number;
  urlTtlSeconds: number;
}

/** Where resumable uploads are staged until their last byte (shared by every instance). */
export interface UploadStaging {
  /** Pre-creates the resumable upload `id` of exactly `size` bytes; clients then only HEAD and PATCH it. */
  create(id: string, size: number): Promise<void>;
  /** Removes an upload's staged bytes (absent is fine). */
  remove(id: string): Promise<void>;
}

export interface CreateUploadRequest {
  filename: string;
  mimeType: string;
  size: number;
  visibility: Visibility;
  /**
   * Services only: the person the file is for (their quota, their item), e.g. the ai service storing a generated
   * image. A person may give only their own id (FORBIDDEN otherwise); a service must give one.
   */
  ownerId?: string | undefined;
}

export interface MediaServiceOptions {
  store: MediaStore;
  storage: FileStorage;
  staging: UploadStaging;
  limits: UploadLimits;
  /** The kind a declared MIME type belongs to, or undefined when the type is not allowed. */
  kindOf(mimeType: string): MediaKind | undefined;
  /** An event was written to the outbox: the relay publishes it now rather than at its next poll. */
  onEvent?(): void;
  /** An item was queued for processing. */
  onQueued?(): void;
  logger?: Logger;
}

const isAdmin = (viewer: Viewer | undefined) => !!viewer?.roles.includes(ROLE_ADMIN);
const isService = (viewer: Viewer | undefined) => !!viewer?.roles.includes(ROLE_SERVICE);

/** Whether `viewer` may read `record`: its owner, admins, services; anyone when it is PUBLIC. */
export function canRead(viewer: Viewer | undefined, record: MediaRecord): boolean {
  return (
    record.visibility === 'PUBLIC' ||
    viewer?.userId === record.ownerId ||
    isAdmin(viewer) ||
    isService(viewer)
  );
}

/** Whether `viewer` may change or delete `record`: its owner and admins. */
function canChange(viewer: Viewer, record: MediaRecord): boolean {
  return viewer.userId === record.ownerId || isAdmin(viewer);
}

/** The storage keys of an item's files: its source and its renditions (shared by identical files of a person). */
export function keysOf(record: MediaRecord): string[] {
  return [
    ...(record.sourceKey ? [record.sourceKey] : []),
    ...record.variants.map((variant) => variant.key),
    ...(record.textKey ? [record.textKey] : []),
  ];
}

/** The folder of one person's files of one content (`owners/<owner>/<sha256>`). */
export function contentFolder(ownerId: string, sha256: string): string {
  return `owners/${ownerId}/${sha256}`;
}

/** Whose an upload is: the viewer's own, or, for a service, the person it names. */
function ownerOfUpload(viewer: Viewer, ownerId: string | undefined): string {
  if (isService(viewer)) {
    if (!ownerId)
      throw badUserInput('A service must name the person the upload is for', { field: 'ownerId' });
    return ownerId;
  }
  if (ownerId !== undefined && ownerId !== viewer.userId) {
    throw forbidden('Only services may upload for someone else');
  }
  return viewer.userId;
}

/**
 * The media subgraph's use cases: starting uploads within limits and quota, reading and listing with access
 * checks, visibility, deletion (the files of a content go with the last item that references them), and the
 * consumers of events (processing queue, a person's deletion). Upload completion is in `uploads.ts`, processing
 * in `processing-worker.ts`.
 */
export class MediaService {
  constructor(private readonly options: MediaServiceOptions) {}

  async createUpload(
    viewer: Viewer,
    request: CreateUploadRequest,
  ): Promise<{ record: MediaRecord; expiresAt: Date }> {
    const { store, limits } = this.options;
    const ownerId = ownerOfUpload(viewer, request.ownerId);
    const kind = this.options.kindOf(request.mimeType);
    if (!kind) {
      throw badUserInput(`Files of type ${request.mimeType} are not accepted`, { field: 'mimeType' });
    }
    const max = limits.maxBytes[kind];
    if (request.size > max) {
      throw badUserInput(`A ${kind.toLowerCase()} may have at most ${max} bytes`, {
        field: 'size',
        limit: max,
      });
    }
    const used = await store.usedBytes(ownerId);
    if (used + request.size > limits.quotaBytes) {
      throw badUserInput(
        `This upload would exceed ${ownerId === viewer.userId ? 'your' : "the person's"} storage quota: ${used} of ${limits.quotaBytes} bytes are used`,
        { field: 'size', reason: 'QUOTA_EXCEEDED', limit: limits.quotaBytes, used },
      );
    }
    const now = new Date();
    const expiresAt = new Date(now.getTime() + limits.urlTtlSeconds * 1000);
    const record: MediaRecord = {
      id: uuidv7(),
      ownerId,
      kind,
      filename: sanitizeFilename(request.filename),
      mimeType: request.mimeType,
      size: request.size,
      sha256: null,
      status: 'AWAITING_UPLOAD',
      failureReason: null,
      visibility: request.visibility,
      width: null,
      height: null,
      durationSeconds: null,
      pageCount: null,
      variants: [],
      sourceKey: null,
      textKey: null,
      textLength: null,
      progress: null,
      attempts: 0,
      nextAttemptAt: null,
      leaseUntil: null,
      leaseToken: null,
      uploadExpiresAt: expiresAt,
      createdAt: now,
      updatedAt: now,
    };
    // The staged upload first: a record without one would answer uploads with 404.
    await this.options.staging.create(record.id, record.size);
    await store.insert(record);
    return { record, expiresAt };
  }

  /** An item the viewer may read; null when absent, FORBIDDEN when it is someone else's and private. */
  async find(viewer: Viewer | undefined, id: string): Promise<MediaRecord | null> {
    const record = await this.options.store.find(id);
    if (record && !canRead(viewer, record)) throw forbidden('This media belongs to someone else');
    return record;
  }

  /** Like `find`, NOT_FOUND when absent. */
  async get(viewer: Viewer | undefined, id: string): Promise<MediaRecord> {
    const record = await this.find(viewer, id);
    if (!record) throw notFound('No such media');
    return record;
  }

  /** A person's items: themself, admins and services only. */
  async list(
    viewer: Viewer | undefined,
    ownerId: string,
    page: { first: number; beforeId?: string | undefined; kind?: MediaKind | undefined },
  ): Promise<MediaPage> {
    if (!viewer) throw forbidden('Only the person can see their media');
    if (viewer.userId !== ownerId && !isAdmin(viewer) && !isService(viewer)) {
      throw forbidden('Only the person can see their media');
    }
    return this.options.store.listByOwner(ownerId, page);
  }

  async setVisibility(viewer: Viewer, id: string, visibility: Visibility): Promise<MediaRecord> {
    const record = await this.get(viewer, id);
    if (!canChange(viewer, record)) throw forbidden('This media belongs to someone else');
    const updated = await this.options.store.setVisibility(id, visibility, new Date());
    if (!updated) throw notFound('No such media');
    return updated;
  }

  /** Deletes an item (its owner or an admin); false when there was none. */
  async delete(viewer: Viewer, id: string): Promise<boolean> {
    const record = await this.options.store.find(id);
    if (!record) return false;
    if (!canChange(viewer, record)) {
      throw canRead(viewer, record) ? forbidden('This media belongs to someone else') : forbidden();
    }
    const removed = await this.options.store.delete(id, this.deletedEvent(record));
    if (!removed) return false;
    this.options.onEvent?.();
    await this.removeFiles([removed]);
    return true;
  }

  /** The uploaded event of a finished upload. */
  uploadedEvent(record: MediaRecord, facts: UploadedFacts, at: Date): AivaEvent {
    return createEvent('aiva.media.media.uploaded.v1', EVENT_SOURCE, {
      id: record.id,
      ownerId: record.ownerId,
      kind: facts.kind,
      mimeType: facts.mimeType,
      size: facts.size,
      sha256: facts.sha256,
      uploadedAt: at.toISOString(),
    });
  }

  deletedEvent(record: MediaRecord): AivaEvent {
    return createEvent('aiva.media.media.deleted.v1', EVENT_SOURCE, {
      id: record.id,
      ownerId: record.ownerId,
      deletedAt: new Date().toISOString(),
    });
  }

  /** Consumer of `aiva.media.media.uploaded.v1`: queues the item for processing, once. */
  async uploaded(consumer: string, event: AivaEvent<'aiva.media.media.uploaded.v1'>): Promise<boolean> {
    const queued = await this.options.store.queueProcessing(consumer, event.id, event.data.id, new Date());
    if (queued) this.options.onQueued?.();
    return queued;
  }

  /** Consumer of `aiva.users.user.deleted.v1`: the person's items and all their files go, once. */
  async personDeleted(consumer: string, event: AivaEvent<'aiva.users.user.deleted.v1'>): Promise<boolean> {
    const ownerId = event.data.id;
    // Files first (idempotent): when this fails the event is delivered again and nothing is left behind.
    await this.options.storage.deletePrefix(`owners/${ownerId}`);
    const removed = await this.options.store.removeOwner(consumer, event.id, ownerId, (record) =>
      this.deletedEvent(record),
    );
    if (removed === 'duplicate') return false;
    for (const record of removed) {
      if (record.status === 'AWAITING_UPLOAD') await this.options.staging.remove(record.id);
    }
    if (removed.length > 0) this.options.onEvent?.();
    this.options.logger?.info({ ownerId, removed: removed.length }, "a deleted person's media removed");
    return true;
  }

  /** Removes uploads never finished in time, and their staged bytes. Returns how many. */
  async expireUploads(now = new Date()): Promise<number> {
    const expired = await this.options.store.removeExpiredUploads(now, 100);
    for (const record of expired) await this.options.staging.remove(record.id);
    return expired.length;
  }

  /** Removes the files of removed items that no other item references (identical files share them). */
  private async removeFiles(removed: MediaRecord[]): Promise<void> {
    const { storage, store, staging } = this.options;
    for (const record of removed) {
      if (record.status === 'AWAITING_UPLOAD') await staging.remove(record.id);
      if (!record.sourceKey || (await store.countBySourceKey(record.sourceKey)) > 0) continue;
      await Promise.all(keysOf(record).map((key) => storage.delete(key)));
    }
  }
}
