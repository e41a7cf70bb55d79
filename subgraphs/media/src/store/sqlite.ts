import {
  type AivaEvent,
  openSqliteEventStore,
  pageLimit,
  SQLITE_OUTBOX_RELAY_MIGRATION,
  SQLITE_OUTBOX_SCHEMA,
  SQLITE_PROCESSED_EVENTS_SCHEMA,
  type SqliteRow,
  sqliteTable,
} from '@aiva/shared';
import { MEDIA_FIELDS, type MediaRecord, type MediaStore } from './media.store.js';

export interface SqliteMediaStoreOptions {
  /** Path of the database file (its directory is created when missing), or `':memory:'`. */
  file: string;
}

/**
 * Schema migrations, applied in order (`PRAGMA user_version` counts them). Append new steps, never edit old
 * ones. Timestamps are ISO-8601 UTC text, which compares correctly.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE media (
    id                TEXT PRIMARY KEY NOT NULL,
    owner_id          TEXT NOT NULL,
    kind              TEXT NOT NULL,
    filename          TEXT NOT NULL,
    mime_type         TEXT NOT NULL,
    size              INTEGER NOT NULL,
    sha256            TEXT NULL,
    status            TEXT NOT NULL,
    failure_reason    TEXT NULL,
    visibility        TEXT NOT NULL,
    width             INTEGER NULL,
    height            INTEGER NULL,
    duration_seconds  REAL NULL,
    page_count        INTEGER NULL,
    variants          TEXT NOT NULL,
    source_key        TEXT NULL,
    text_key          TEXT NULL,
    text_length       INTEGER NULL,
    progress          REAL NULL,
    attempts          INTEGER NOT NULL,
    next_attempt_at   TEXT NULL,
    lease_until       TEXT NULL,
    lease_token       TEXT NULL,
    upload_expires_at TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
  ) STRICT;
  CREATE INDEX media_owner ON media (owner_id, id);
  CREATE INDEX media_owner_kind ON media (owner_id, kind, id);
  CREATE INDEX media_owner_sha ON media (owner_id, sha256);
  CREATE INDEX media_source ON media (source_key);
  CREATE INDEX media_due ON media (next_attempt_at) WHERE status IN ('UPLOADED', 'PROCESSING');
  CREATE INDEX media_awaiting ON media (upload_expires_at) WHERE status = 'AWAITING_UPLOAD';
  ${SQLITE_OUTBOX_SCHEMA}
  ${SQLITE_OUTBOX_RELAY_MIGRATION}
  ${SQLITE_PROCESSED_EVENTS_SCHEMA}
  `,
];

/** Opens (creating and migrating when needed) the SQLite media store. */
export function openSqliteMediaStore(options: SqliteMediaStoreOptions): MediaStore {
  const store = openSqliteEventStore({ file: options.file, migrations: MIGRATIONS, label: 'media database' });
  const { db } = store;
  const media = sqliteTable(db, { table: 'media', fields: MEDIA_FIELDS });
  const byOwner = media.pager('owner_id = @ownerId AND (@kind IS NULL OR kind = @kind)');
  const stmt = {
    usedBytes: db
      .prepare<[string], number>(
        `SELECT coalesce(sum(size), 0) FROM media WHERE owner_id = ? AND NOT (status = 'FAILED' AND source_key IS NULL)`,
      )
      .pluck(),
    readyBySha: db.prepare<[string, string, string], SqliteRow>(
      `SELECT * FROM media WHERE owner_id = ? AND sha256 = ? AND id <> ? AND status = 'READY' LIMIT 1`,
    ),
    countBySource: db.prepare<[string], number>('SELECT count(*) FROM media WHERE source_key = ?').pluck(),
    markUploaded: db.prepare<[SqliteRow]>(
      `UPDATE media SET status = 'UPLOADED', kind = @kind, mime_type = @mimeType, size = @size, sha256 = @sha256,
         source_key = @sourceKey, updated_at = @at
       WHERE id = @id AND status = 'AWAITING_UPLOAD'`,
    ),
    markRejected: db.prepare<[SqliteRow]>(
      `UPDATE media SET status = 'FAILED', failure_reason = @reason, kind = coalesce(@kind, kind),
         mime_type = coalesce(@mimeType, mime_type), size = coalesce(@size, size), sha256 = @sha256,
         updated_at = @at
       WHERE id = @id AND status = 'AWAITING_UPLOAD'`,
    ),
    queue: db.prepare<[SqliteRow]>(
      `UPDATE media SET next_attempt_at = @at, updated_at = @at WHERE id = @id AND status = 'UPLOADED'`,
    ),
    claim: db.prepare<[SqliteRow], SqliteRow>(
      `UPDATE media SET status = 'PROCESSING', lease_until = @leaseUntil, lease_token = @token, updated_at = @now
       WHERE id IN (
         SELECT id FROM media
         WHERE status IN ('UPLOADED', 'PROCESSING') AND next_attempt_at IS NOT NULL AND next_attempt_at <= @now
           AND (lease_until IS NULL OR lease_until <= @now)
         ORDER BY next_attempt_at, id LIMIT @limit)
       RETURNING *`,
    ),
    renew: db.prepare<[SqliteRow]>(
      `UPDATE media SET lease_until = @leaseUntil, progress = coalesce(@progress, progress)
       WHERE id = @id AND lease_token = @token AND status = 'PROCESSING'`,
    ),
    ready: db.prepare<[SqliteRow]>(
      `UPDATE media SET status = 'READY', failure_reason = NULL, kind = @kind, width = @width, height = @height,
         duration_seconds = @durationSeconds, page_count = @pageCount, variants = @variants,
         text_key = @textKey, text_length = @textLength, progress = 1, next_attempt_at = NULL,
         lease_until = NULL, lease_token = NULL, updated_at = @at
       WHERE id = @id AND lease_token = @token AND status = 'PROCESSING'`,
    ),
    failed: db.prepare<[SqliteRow]>(
      `UPDATE media SET status = 'FAILED', failure_reason = @reason, progress = NULL, next_attempt_at = NULL,
         lease_until = NULL, lease_token = NULL, updated_at = @at
       WHERE id = @id AND lease_token = @token AND status = 'PROCESSING'`,
    ),
    retry: db.prepare<[SqliteRow]>(
      `UPDATE media SET status = 'UPLOADED', attempts = @attempts, next_attempt_at = @nextAttemptAt, lease_until = NULL,
         lease_token = NULL, updated_at = @at
       WHERE id = @id AND lease_token = @token AND status = 'PROCESSING'`,
    ),
    setVisibility: db.prepare<[SqliteRow], SqliteRow>(
      'UPDATE media SET visibility = @visibility, updated_at = @at WHERE id = @id RETURNING *',
    ),
    ofOwner: db.prepare<[string], SqliteRow>('SELECT * FROM media WHERE owner_id = ?'),
    deleteOfOwner: db.prepare<[string]>('DELETE FROM media WHERE owner_id = ?'),
    expired: db.prepare<[SqliteRow], SqliteRow>(
      `DELETE FROM media WHERE id IN (
         SELECT id FROM media WHERE status = 'AWAITING_UPLOAD' AND upload_expires_at <= @now LIMIT @limit)
       RETURNING *`,
    ),
  };

  /** Runs a conditional update; when it changed the row, its event goes to the outbox in the same transaction. */
  const withEvent = store.transaction((changed: () => boolean, event: AivaEvent): boolean => {
    const ok = changed();
    if (ok) store.outbox.write(event);
    return ok;
  });
  const deleteTx = store.transaction((id: string, event: AivaEvent): MediaRecord | null => {
    const found = media.findById(id);
    if (!found) return null;
    media.deleteById(id);
    store.outbox.write(event);
    return found;
  });

  return {
    kind: 'sqlite',

    async insert(record) {
      media.insert(record);
    },
    async find(id) {
      return media.findById(id);
    },
    async findMany(ids) {
      return media.findByIds(ids);
    },
    async listByOwner(ownerId, page) {
      const result = byOwner.page(
        { first: page.first, afterId: page.beforeId ?? undefined, order: 'desc' },
        { ownerId, kind: page.kind ?? null },
      );
      return { media: result.items, hasNextPage: result.hasNextPage };
    },
    async usedBytes(ownerId) {
      return stmt.usedBytes.get(ownerId) ?? 0;
    },
    async findReadyBySha(ownerId, sha256, exceptId) {
      const row = stmt.readyBySha.get(ownerId, sha256, exceptId);
      return row ? media.fromRow(row) : null;
    },
    async countBySourceKey(sourceKey) {
      return stmt.countBySource.get(sourceKey) ?? 0;
    },
    async markUploaded(id, facts, event, at) {
      const row = { id, ...facts, at: at.toISOString() };
      return withEvent(() => stmt.markUploaded.run(row).changes > 0, event);
    },
    async markRejected(id, reason, facts, at) {
      const row = {
        id,
        reason,
        kind: facts.kind ?? null,
        mimeType: facts.mimeType ?? null,
        size: facts.size ?? null,
        sha256: facts.sha256 ?? null,
        at: at.toISOString(),
      };
      return stmt.markRejected.run(row).changes > 0;
    },
    async queueProcessing(consumer, eventId, id, at) {
      const outcome = store.once(consumer, eventId, () => {
        stmt.queue.run({ id, at: at.toISOString() });
      });
      return outcome !== 'duplicate';
    },
    async claimDue(now, leaseUntil, token, limit) {
      // One UPDATE: the write lock makes a claim atomic across connections (see the notifications store).
      return stmt.claim
        .all({ now: now.toISOString(), leaseUntil: leaseUntil.toISOString(), token, limit: pageLimit(limit) })
        .map(media.fromRow)
        .sort((a, b) => (a.id < b.id ? -1 : 1));
    },
    async renewLease(id, token, leaseUntil, progress) {
      return stmt.renew.run({ id, token, leaseUntil: leaseUntil.toISOString(), progress }).changes > 0;
    },
    async finishProcessing(id, token, outcome, event, at) {
      const base = { id, token, at: at.toISOString() };
      if (outcome.status === 'FAILED') {
        const row = { ...base, reason: outcome.reason };
        return withEvent(() => stmt.failed.run(row).changes > 0, event);
      }
      const { facts } = outcome;
      const row = { ...base, ...facts, variants: JSON.stringify(facts.variants) };
      return withEvent(() => stmt.ready.run(row).changes > 0, event);
    },
    async retryProcessing(id, token, attempts, nextAttemptAt, at) {
      const row = { id, token, attempts, nextAttemptAt: nextAttemptAt.toISOString(), at: at.toISOString() };
      return stmt.retry.run(row).changes > 0;
    },
    async setVisibility(id, visibility, at) {
      const row = stmt.setVisibility.get({ id, visibility, at: at.toISOString() });
      return row ? media.fromRow(row) : null;
    },
    async delete(id, event) {
      return deleteTx(id, event);
    },
    async removeOwner(consumer, eventId, ownerId, eventOf) {
      return store.once(consumer, eventId, () => {
        const removed = stmt.ofOwner.all(ownerId).map(media.fromRow);
        stmt.deleteOfOwner.run(ownerId);
        for (const record of removed) store.outbox.write(eventOf(record));
        return removed;
      });
    },
    async removeExpiredUploads(now, limit) {
      return stmt.expired.all({ now: now.toISOString(), limit: pageLimit(limit) }).map(media.fromRow);
    },
    ...store.relay,
    ping: store.ping,
    close: store.close,
  };
}
