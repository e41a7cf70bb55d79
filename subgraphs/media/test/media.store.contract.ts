import { createHash } from 'node:crypto';
import { type AivaEvent, createEvent, uuidv7 } from '@aiva/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  MediaKind,
  MediaRecord,
  MediaStore,
  MediaVariant,
  ProcessedFacts,
  UploadedFacts,
} from '../src/store/media.store.js';

/** A store under test, as the contract's `open` returns it. */
export interface OpenedMediaStore {
  /** A fresh, empty store (on a database of its own). */
  store: MediaStore;
  /**
   * Another connection to the same database: a second instance of the subgraph (another processing worker).
   * Optional; the contract closes what it returns.
   */
  openPeer?(): Promise<MediaStore>;
  /** Closes the store (calling `close` again must be harmless) and removes its database. */
  cleanup(): Promise<void>;
}

const SOURCE = 'media';
const CONSUMER = 'media.test';
/** A fixed clock origin; every timestamp of the suite is at millisecond precision. */
export const T0 = new Date('2030-01-02T03:04:05.678Z');
/** `T0` plus `ms`. */
export const at = (ms: number) => new Date(T0.getTime() + ms);
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** A fresh person id. */
export const personId = () => uuidv7();

/** The hex SHA-256 of `text` (stands for the hash of a file's bytes). */
export const sha256Of = (text: string) => createHash('sha256').update(text).digest('hex');

/** A media item of `ownerId` just created by `createUpload` (awaiting its bytes until `T0` + 1 hour). */
export function makeMedia(ownerId: string, overrides: Partial<MediaRecord> = {}): MediaRecord {
  return {
    id: uuidv7(),
    ownerId,
    kind: 'IMAGE',
    filename: 'holiday photo.jpg',
    mimeType: 'image/jpeg',
    size: 1000,
    sha256: null,
    status: 'AWAITING_UPLOAD',
    failureReason: null,
    visibility: 'PRIVATE',
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
    uploadExpiresAt: at(HOUR),
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

/** What the bytes of `record` turn out to be (a PNG of `size` bytes with the hash of `content`). */
export function uploadedFacts(record: MediaRecord, content = record.id, size = 2048): UploadedFacts {
  const sha256 = sha256Of(content);
  return {
    kind: 'IMAGE',
    mimeType: 'image/png',
    size,
    sha256,
    sourceKey: `owners/${record.ownerId}/${sha256}/source`,
  };
}

/** The uploaded event of `record` with `facts`. */
export function uploadedEvent(record: MediaRecord, facts: UploadedFacts): AivaEvent {
  return createEvent('aiva.media.media.uploaded.v1', SOURCE, {
    id: record.id,
    ownerId: record.ownerId,
    kind: facts.kind,
    mimeType: facts.mimeType,
    size: facts.size,
    sha256: facts.sha256,
    uploadedAt: T0.toISOString(),
  });
}

/** The processed event of `record` (READY, or FAILED with `reason`). */
export function processedEvent(record: MediaRecord, reason: string | null = null): AivaEvent {
  return createEvent('aiva.media.media.processed.v1', SOURCE, {
    id: record.id,
    ownerId: record.ownerId,
    kind: record.kind,
    mimeType: record.mimeType,
    status: reason === null ? 'READY' : 'FAILED',
    failureReason: reason,
    pageCount: null,
    durationSeconds: null,
    textKey: null,
    textLength: null,
    processedAt: T0.toISOString(),
  });
}

/** The deleted event of `record`. */
export function deletedEvent(record: MediaRecord): AivaEvent {
  return createEvent('aiva.media.media.deleted.v1', SOURCE, {
    id: record.id,
    ownerId: record.ownerId,
    deletedAt: T0.toISOString(),
  });
}

/** Renditions of an image (a thumbnail and a WebP). */
export function imageVariants(record: MediaRecord): MediaVariant[] {
  const base = `owners/${record.ownerId}/${record.sha256 ?? 'x'}`;
  return [
    {
      name: 'thumbnail',
      key: `${base}/thumbnail.webp`,
      mimeType: 'image/webp',
      width: 320,
      height: 240,
      size: 900,
    },
    {
      name: 'webp',
      key: `${base}/full.webp`,
      mimeType: 'image/webp',
      width: 1600,
      height: 1200,
      size: 41000,
    },
  ];
}

/** What processing found for an image. */
export function imageFacts(record: MediaRecord): ProcessedFacts {
  return {
    kind: 'IMAGE',
    width: 1600,
    height: 1200,
    durationSeconds: null,
    pageCount: null,
    variants: imageVariants(record),
    textKey: null,
    textLength: null,
  };
}

/** Inserts an item and finishes its upload (writing its uploaded event); returns the record as stored. */
export async function uploaded(
  store: MediaStore,
  ownerId: string,
  options: { overrides?: Partial<MediaRecord>; content?: string; size?: number } = {},
): Promise<MediaRecord> {
  const record = makeMedia(ownerId, options.overrides);
  await store.insert(record);
  const facts = uploadedFacts(record, options.content, options.size);
  expect(await store.markUploaded(record.id, facts, uploadedEvent(record, facts), T0)).toBe(true);
  return { ...record, ...facts, status: 'UPLOADED' };
}

/** Consumes a fresh uploaded event of `id`: queues it, due at `due`. */
export async function queue(store: MediaStore, id: string, due: Date = T0): Promise<string> {
  const eventId = uuidv7();
  expect(await store.queueProcessing(CONSUMER, eventId, id, due)).toBe(true);
  return eventId;
}

/** An uploaded item queued for processing, due at `due`. */
async function queued(store: MediaStore, ownerId: string, due: Date = T0): Promise<MediaRecord> {
  const record = await uploaded(store, ownerId);
  await queue(store, record.id, due);
  return { ...record, nextAttemptAt: due, updatedAt: due };
}

const ids = (records: ReadonlyArray<{ id: string }>) => records.map((r) => r.id);
const sortedIds = (records: ReadonlyArray<{ id: string }>) => ids(records).sort();

/** The ids of the events waiting in the outbox, oldest first. */
async function pendingIds(store: MediaStore): Promise<string[]> {
  return ids(await store.pendingEvents(1000));
}

/** Drops the pending events (as the relay does once they are published). */
async function publishAll(store: MediaStore): Promise<void> {
  await store.markPublished(await pendingIds(store));
}

/**
 * The behaviour every MediaStore adapter must have. `open` returns a fresh, empty store; the contract cleans it up
 * (and closes any peer) after each test.
 */
export function mediaStoreContract(name: string, open: () => Promise<OpenedMediaStore>): void {
  describe(`MediaStore contract: ${name}`, () => {
    let opened: OpenedMediaStore;
    let store: MediaStore;
    const peers: MediaStore[] = [];

    beforeEach(async () => {
      opened = await open();
      store = opened.store;
    });

    afterEach(async () => {
      await Promise.all(peers.splice(0).map((peer) => peer.close()));
      await opened.cleanup();
    });

    /** Another instance on the same database, or the store itself when the adapter has no peers. */
    const peerOf = async (): Promise<MediaStore> => {
      if (!opened.openPeer) return store;
      const peer = await opened.openPeer();
      peers.push(peer);
      return peer;
    };

    /** Claims with a lease of one minute from `now` under `token` and returns the ids. */
    const claimIds = async (worker: MediaStore, now: Date, token = uuidv7(), limit = 100) =>
      ids(await worker.claimDue(now, new Date(now.getTime() + MINUTE), token, limit));

    it('starts empty, answers ping and has an empty outbox', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
      const ownerId = personId();
      expect(await store.find(uuidv7())).toBeNull();
      expect(await store.findMany([uuidv7()])).toEqual([]);
      expect(await store.findMany([])).toEqual([]);
      expect(await store.listByOwner(ownerId, { first: 10 })).toEqual({ media: [], hasNextPage: false });
      expect(await store.usedBytes(ownerId)).toBe(0);
      expect(await store.countBySourceKey(`owners/${ownerId}/x/source`)).toBe(0);
      expect(await store.findReadyBySha(ownerId, sha256Of('x'), uuidv7())).toBeNull();
      expect(await store.claimDue(at(HOUR), at(2 * HOUR), uuidv7(), 10)).toEqual([]);
      expect(await store.removeExpiredUploads(at(24 * HOUR), 10)).toEqual([]);
      expect(await store.pendingEvents(10)).toEqual([]);
      expect(['sqlite', 'mongo']).toContain(store.kind);
    });

    it('stores a record whole and finds it, alone or with others', async () => {
      const ownerId = personId();
      const fresh = makeMedia(ownerId);
      const sha256 = sha256Of('full');
      const full = makeMedia(ownerId, {
        kind: 'DOCUMENT',
        filename: 'Report — Grüße 2030.pdf',
        mimeType: 'application/pdf',
        size: 123_456,
        sha256,
        status: 'READY',
        visibility: 'PUBLIC',
        width: 595,
        height: 842,
        durationSeconds: 12.5,
        pageCount: 3,
        variants: [
          {
            name: 'thumbnail',
            key: `k/${sha256}/t.webp`,
            mimeType: 'image/webp',
            width: 160,
            height: 226,
            size: 1,
          },
          {
            name: 'text',
            key: `k/${sha256}/text.txt`,
            mimeType: 'text/plain',
            width: null,
            height: null,
            size: 0,
          },
        ],
        sourceKey: `owners/${ownerId}/${sha256}/source`,
        textKey: `owners/${ownerId}/${sha256}/text.txt`,
        textLength: 4321,
        progress: 0.25,
        attempts: 2,
        nextAttemptAt: at(SECOND),
        leaseUntil: at(MINUTE),
        leaseToken: uuidv7(),
        uploadExpiresAt: at(HOUR),
        createdAt: at(-MINUTE),
        updatedAt: at(2 * SECOND),
      });
      const empty = makeMedia(ownerId, { filename: '' });
      for (const record of [fresh, full, empty]) await store.insert(record);

      for (const record of [fresh, full, empty]) {
        const found = await store.find(record.id);
        expect(found).toEqual(record);
        expect(found?.createdAt).toBeInstanceOf(Date);
        expect(found?.uploadExpiresAt).toBeInstanceOf(Date);
      }
      expect((await store.find(full.id))?.nextAttemptAt?.getTime()).toBe(at(SECOND).getTime());
      // Records given back are copies: changing one changes nothing stored.
      const copy = await store.find(full.id);
      copy?.variants.pop();
      expect(await store.find(full.id)).toEqual(full);

      const many = await store.findMany([full.id, uuidv7(), fresh.id, full.id]);
      expect(sortedIds(many)).toEqual([fresh.id, full.id].sort());
      expect(many.find((r) => r.id === full.id)).toEqual(full);

      // An id is stored once.
      await expect(store.insert({ ...fresh, filename: 'other.jpg' })).rejects.toThrow();
      expect(await store.find(fresh.id)).toEqual(fresh);
    });

    it('lists a person’s media newest first, page by page, by kind, never anyone else’s', async () => {
      const ada = personId();
      const bob = personId();
      const kinds: MediaKind[] = ['IMAGE', 'VIDEO', 'IMAGE', 'DOCUMENT', 'IMAGE', 'AUDIO', 'IMAGE'];
      const adas: MediaRecord[] = [];
      const bobs: MediaRecord[] = [];
      for (const [i, kind] of kinds.entries()) {
        const record = makeMedia(ada, { kind });
        await store.insert(record);
        adas.push(record);
        if (i % 2 === 0) {
          const other = makeMedia(bob, { kind });
          await store.insert(other);
          bobs.push(other);
        }
      }
      const newestFirst = ids(adas).reverse();

      const pages: string[][] = [];
      const more: boolean[] = [];
      let beforeId: string | undefined;
      for (let guard = 0; guard < 5; guard++) {
        const page = await store.listByOwner(ada, { first: 3, beforeId });
        pages.push(ids(page.media));
        more.push(page.hasNextPage);
        if (!page.hasNextPage) break;
        beforeId = page.media.at(-1)?.id;
      }
      expect(pages).toEqual([newestFirst.slice(0, 3), newestFirst.slice(3, 6), newestFirst.slice(6)]);
      expect(more).toEqual([true, true, false]);

      // Records come back whole; beforeId excludes that id and everything newer; null means from the start.
      expect((await store.listByOwner(ada, { first: 1, beforeId: null })).media).toEqual([adas.at(-1)]);
      const tail = await store.listByOwner(ada, { first: 10, beforeId: newestFirst[4] });
      expect(ids(tail.media)).toEqual(newestFirst.slice(5));
      expect(tail.hasNextPage).toBe(false);
      expect((await store.listByOwner(ada, { first: 7 })).hasNextPage).toBe(false);
      expect((await store.listByOwner(ada, { first: 6 })).hasNextPage).toBe(true);
      expect((await store.listByOwner(ada, { first: 0 })).media).toEqual([]);

      // Of one kind, page by page.
      const images = ids(adas.filter((r) => r.kind === 'IMAGE')).reverse();
      const firstImages = await store.listByOwner(ada, { first: 2, kind: 'IMAGE' });
      expect(ids(firstImages.media)).toEqual(images.slice(0, 2));
      expect(firstImages.hasNextPage).toBe(true);
      const restImages = await store.listByOwner(ada, { first: 5, kind: 'IMAGE', beforeId: images[1] });
      expect(ids(restImages.media)).toEqual(images.slice(2));
      expect(restImages.hasNextPage).toBe(false);
      expect(ids((await store.listByOwner(ada, { first: 5, kind: 'VIDEO' })).media)).toEqual([adas[1]?.id]);
      expect(ids((await store.listByOwner(ada, { first: 5, kind: undefined })).media)).toHaveLength(5);

      // Bob's list is his alone, even past one of Ada's ids.
      expect(ids((await store.listByOwner(bob, { first: 10 })).media)).toEqual(ids(bobs).reverse());
      const past = await store.listByOwner(bob, { first: 10, beforeId: newestFirst[0] });
      expect(ids(past.media)).toEqual(
        ids(bobs)
          .reverse()
          .filter((id) => id < (newestFirst[0] ?? '')),
      );
      expect(await store.listByOwner(personId(), { first: 10 })).toEqual({ media: [], hasNextPage: false });
    });

    it('counts the bytes a person holds or reserved, but not refused uploads', async () => {
      const ada = personId();
      const bob = personId();
      await store.insert(makeMedia(ada, { size: 100 })); // reserved: awaiting its bytes
      await uploaded(store, ada, { size: 2000 });
      const failedAfterUpload = makeMedia(ada, {
        size: 30_000,
        status: 'FAILED',
        failureReason: 'corrupt',
        sourceKey: `owners/${ada}/${sha256Of('f')}/source`,
      });
      await store.insert(failedAfterUpload); // its bytes are stored: they count
      const refused = makeMedia(ada, { size: 400_000 });
      await store.insert(refused);
      expect(await store.markRejected(refused.id, 'not an allowed type', {}, T0)).toBe(true);
      await store.insert(makeMedia(ada, { size: 5_000_000, status: 'FAILED', failureReason: 'too big' }));
      await store.insert(makeMedia(bob, { size: 7 }));

      expect(await store.usedBytes(ada)).toBe(100 + 2000 + 30_000);
      expect(await store.usedBytes(bob)).toBe(7);
      expect(await store.usedBytes(personId())).toBe(0);
    });

    it('records an upload once, only while awaiting it, with exactly one event', async () => {
      const ownerId = personId();
      const record = makeMedia(ownerId);
      await store.insert(record);
      const facts = uploadedFacts(record);
      const event = uploadedEvent(record, facts);

      expect(await store.markUploaded(record.id, facts, event, at(SECOND))).toBe(true);
      const stored = { ...record, ...facts, status: 'UPLOADED' as const, updatedAt: at(SECOND) };
      expect(await store.find(record.id)).toEqual(stored);
      expect(await store.pendingEvents(10)).toEqual([event]);

      // Again (a retried hook): nothing changes and no second event is written.
      const again = uploadedFacts(record, 'other bytes', 9);
      expect(await store.markUploaded(record.id, again, uploadedEvent(record, again), at(MINUTE))).toBe(
        false,
      );
      expect(await store.find(record.id)).toEqual(stored);
      expect(await pendingIds(store)).toEqual([event.id]);

      // Unknown, or refused before: false, no event.
      const unknown = makeMedia(ownerId);
      expect(await store.markUploaded(unknown.id, facts, uploadedEvent(unknown, facts), T0)).toBe(false);
      const refused = makeMedia(ownerId);
      await store.insert(refused);
      await store.markRejected(refused.id, 'refused', {}, T0);
      expect(await store.markUploaded(refused.id, facts, uploadedEvent(refused, facts), T0)).toBe(false);
      expect((await store.find(refused.id))?.status).toBe('FAILED');
      expect(await pendingIds(store)).toEqual([event.id]);

      // The relay publishes it: the outbox is empty again.
      await publishAll(store);
      expect(await store.pendingEvents(10)).toEqual([]);
    });

    it('refuses an upload only while awaiting it, keeping declared values not found out', async () => {
      const ownerId = personId();
      const record = makeMedia(ownerId);
      await store.insert(record);

      const sha256 = sha256Of('an executable');
      const facts = { mimeType: 'application/x-msdownload', size: 777, sha256 };
      expect(await store.markRejected(record.id, 'This file type is not allowed', facts, at(SECOND))).toBe(
        true,
      );
      const refused = {
        ...record,
        ...facts,
        status: 'FAILED' as const,
        failureReason: 'This file type is not allowed',
        updatedAt: at(SECOND),
      };
      expect(await store.find(record.id)).toEqual(refused);
      expect(await store.markRejected(record.id, 'again', { kind: 'VIDEO' }, at(MINUTE))).toBe(false);
      expect(await store.find(record.id)).toEqual(refused);

      // With nothing found out, the declared kind, type and size stay.
      const bare = makeMedia(ownerId, { kind: 'VIDEO', mimeType: 'video/mp4', size: 5 });
      await store.insert(bare);
      expect(await store.markRejected(bare.id, 'The upload was empty', {}, at(SECOND))).toBe(true);
      expect(await store.find(bare.id)).toEqual({
        ...bare,
        status: 'FAILED',
        failureReason: 'The upload was empty',
        updatedAt: at(SECOND),
      });

      // Not once uploaded, nor for an unknown id; never an event.
      const done = await uploaded(store, ownerId);
      await publishAll(store);
      expect(await store.markRejected(done.id, 'late', {}, at(SECOND))).toBe(false);
      expect((await store.find(done.id))?.status).toBe('UPLOADED');
      expect(await store.markRejected(uuidv7(), 'unknown', {}, at(SECOND))).toBe(false);
      expect(await store.pendingEvents(10)).toEqual([]);
    });

    it('queues an uploaded item once per (consumer, event), and only an uploaded one', async () => {
      const ownerId = personId();
      const record = await uploaded(store, ownerId);
      const eventId = uuidv7();

      expect(await store.queueProcessing(CONSUMER, eventId, record.id, at(SECOND))).toBe(true);
      const due = { ...record, nextAttemptAt: at(SECOND), updatedAt: at(SECOND) };
      expect(await store.find(record.id)).toEqual(due);

      // The same event again (a redelivery): nothing changes.
      expect(await store.queueProcessing(CONSUMER, eventId, record.id, at(MINUTE))).toBe(false);
      expect(await store.find(record.id)).toEqual(due);
      // Another consumer of the same event is another (consumer, event).
      expect(await store.queueProcessing('media.other', eventId, record.id, at(2 * SECOND))).toBe(true);
      expect((await store.find(record.id))?.nextAttemptAt).toEqual(at(2 * SECOND));

      // An item not uploaded (awaiting, refused, gone) is not queued; the event is consumed all the same.
      const awaiting = makeMedia(ownerId);
      await store.insert(awaiting);
      const awaitingEvent = uuidv7();
      expect(await store.queueProcessing(CONSUMER, awaitingEvent, awaiting.id, T0)).toBe(true);
      expect(await store.find(awaiting.id)).toEqual(awaiting);
      expect(await store.queueProcessing(CONSUMER, awaitingEvent, awaiting.id, T0)).toBe(false);
      expect(await store.queueProcessing(CONSUMER, uuidv7(), uuidv7(), T0)).toBe(true);

      // Nor one being processed or done.
      const [claimed] = await store.claimDue(at(2 * SECOND), at(MINUTE), uuidv7(), 10);
      expect(claimed?.id).toBe(record.id);
      expect(await store.queueProcessing(CONSUMER, uuidv7(), record.id, at(HOUR))).toBe(true);
      expect((await store.find(record.id))?.nextAttemptAt).toEqual(at(2 * SECOND));
      expect(await store.claimDue(at(3 * SECOND), at(MINUTE), uuidv7(), 10)).toEqual([]);
    });

    it('claims only items due for processing, oldest due first, up to the limit', async () => {
      const ownerId = personId();
      const q1 = await queued(store, ownerId, at(-3 * MINUTE));
      const later = await queued(store, ownerId, at(30 * SECOND));
      const q3 = await queued(store, ownerId, at(-MINUTE));
      const q2 = await queued(store, ownerId, at(-2 * MINUTE));
      const dueNow = await queued(store, ownerId, T0);
      const notQueued = await uploaded(store, ownerId); // its event not consumed yet
      await store.insert(makeMedia(ownerId)); // awaiting its bytes
      await store.insert(makeMedia(ownerId, { status: 'READY', nextAttemptAt: at(-HOUR) }));
      await store.insert(makeMedia(ownerId, { status: 'FAILED', nextAttemptAt: at(-HOUR) }));
      await store.insert(makeMedia(ownerId, { status: 'AWAITING_UPLOAD', nextAttemptAt: at(-HOUR) }));

      const token = uuidv7();
      expect(await store.claimDue(T0, at(MINUTE), token, 0)).toEqual([]);
      expect(await store.claimDue(T0, at(MINUTE), token, -1)).toEqual([]);
      // The two due first, whole, marked PROCESSING and leased under the token; returned in id order.
      const first = await store.claimDue(T0, at(MINUTE), token, 2);
      const lease = {
        status: 'PROCESSING',
        leaseUntil: at(MINUTE),
        leaseToken: token,
        updatedAt: T0,
      } as const;
      expect(first).toEqual([
        { ...q1, ...lease },
        { ...q2, ...lease },
      ]);
      expect(await store.find(q1.id)).toEqual({ ...q1, ...lease });
      // A fractional limit is floored.
      expect(await claimIds(store, T0, uuidv7(), 1.7)).toEqual([q3.id]);
      expect(await claimIds(store, T0)).toEqual([dueNow.id]);
      expect(await claimIds(store, T0)).toEqual([]);
      // `later` once it is due (the others are still held); the rest never.
      expect(await claimIds(store, at(30 * SECOND - 1))).toEqual([]);
      expect(await claimIds(store, at(30 * SECOND))).toEqual([later.id]);
      expect((await store.find(notQueued.id))?.status).toBe('UPLOADED');
      // Every lease has ended an hour later: all are taken over, in id order.
      expect(await claimIds(store, at(HOUR))).toEqual(ids([q1, later, q3, q2, dueNow]).sort());
    });

    it('holds a claimed item until its lease ends, for every connection', async () => {
      const peer = await peerOf();
      const record = await queued(store, personId());
      const mine = uuidv7();
      const theirs = uuidv7();

      expect(await claimIds(store, T0, mine)).toEqual([record.id]);
      expect(await claimIds(peer, at(SECOND))).toEqual([]);
      expect(await claimIds(store, at(MINUTE - 1))).toEqual([]);
      // The lease ended (the worker crashed): another takes it over under its own token, and holds it in turn.
      expect(await claimIds(peer, at(MINUTE), theirs)).toEqual([record.id]);
      expect(await store.find(record.id)).toMatchObject({
        status: 'PROCESSING',
        leaseToken: theirs,
        leaseUntil: at(2 * MINUTE),
      });
      expect(await claimIds(store, at(2 * MINUTE - 1))).toEqual([]);
      expect(await claimIds(store, at(2 * MINUTE))).toEqual([record.id]);
    });

    it('gives each item to exactly one of two workers claiming at once', async () => {
      const peer = await peerOf();
      const ownerId = personId();
      const all: MediaRecord[] = [];
      for (let i = 0; i < 40; i++)
        all.push(await queued(i % 2 === 0 ? store : peer, ownerId, at(-(i % 7) * SECOND)));

      const drain = async (worker: MediaStore) => {
        const token = uuidv7();
        const mine: string[] = [];
        for (let guard = 0; guard < 100; guard++) {
          const batch = await worker.claimDue(T0, at(HOUR), token, 3);
          expect(batch.length).toBeLessThanOrEqual(3);
          expect(batch.every((r) => r.leaseToken === token && r.status === 'PROCESSING')).toBe(true);
          if (batch.length === 0) break;
          mine.push(...ids(batch));
        }
        return mine;
      };
      const [a, b] = await Promise.all([drain(store), drain(peer)]);

      const claimed = [...(a ?? []), ...(b ?? [])];
      expect(new Set(claimed).size).toBe(claimed.length);
      expect([...claimed].sort()).toEqual(sortedIds(all));
      expect(await claimIds(peer, T0)).toEqual([]);
    });

    it('renews a lease only for the holder of the claim, keeping the last progress when none is given', async () => {
      const record = await queued(store, personId());
      const first = uuidv7();
      await claimIds(store, T0, first);

      expect(await store.renewLease(record.id, first, at(2 * MINUTE), 0.5)).toBe(true);
      expect(await store.find(record.id)).toMatchObject({ leaseUntil: at(2 * MINUTE), progress: 0.5 });
      expect(await store.renewLease(record.id, first, at(3 * MINUTE), null)).toBe(true);
      expect(await store.find(record.id)).toMatchObject({ leaseUntil: at(3 * MINUTE), progress: 0.5 });
      // Renewed: not claimable when the first lease would have ended.
      expect(await claimIds(store, at(2 * MINUTE))).toEqual([]);

      // Another token (a stale or foreign one) renews nothing.
      expect(await store.renewLease(record.id, uuidv7(), at(HOUR), 0.9)).toBe(false);
      expect(await store.find(record.id)).toMatchObject({ leaseUntil: at(3 * MINUTE), progress: 0.5 });

      // The lease ended and another worker took over: the first one's token is stale.
      const second = uuidv7();
      expect(await claimIds(store, at(3 * MINUTE), second)).toEqual([record.id]);
      expect(await store.renewLease(record.id, first, at(HOUR), 0.9)).toBe(false);
      expect(await store.renewLease(record.id, second, at(5 * MINUTE), 0.75)).toBe(true);
      expect(await store.find(record.id)).toMatchObject({
        leaseToken: second,
        leaseUntil: at(5 * MINUTE),
        progress: 0.75,
      });
      expect(await store.renewLease(uuidv7(), second, at(HOUR), null)).toBe(false);
    });

    it('records READY with what processing found and one processed event, for the holder only', async () => {
      const record = await queued(store, personId());
      await publishAll(store);
      const stale = uuidv7();
      const holder = uuidv7();
      await claimIds(store, T0, stale);
      await store.renewLease(record.id, stale, at(MINUTE), 0.4);
      expect(await claimIds(store, at(MINUTE), holder)).toEqual([record.id]); // taken over

      const facts = imageFacts(record);
      const staleEvent = processedEvent(record);
      expect(
        await store.finishProcessing(record.id, stale, { status: 'READY', facts }, staleEvent, at(MINUTE)),
      ).toBe(false);
      expect(await store.pendingEvents(10)).toEqual([]);
      expect(await store.find(record.id)).toMatchObject({ status: 'PROCESSING', leaseToken: holder });

      const event = processedEvent(record);
      expect(
        await store.finishProcessing(record.id, holder, { status: 'READY', facts }, event, at(2 * MINUTE)),
      ).toBe(true);
      const ready: MediaRecord = {
        ...record,
        ...facts,
        status: 'READY',
        failureReason: null,
        progress: 1,
        nextAttemptAt: null,
        leaseUntil: null,
        leaseToken: null,
        updatedAt: at(2 * MINUTE),
      };
      expect(await store.find(record.id)).toEqual(ready);
      expect(await store.pendingEvents(10)).toEqual([event]);

      // Done: not again (no second event), not claimable, not renewable, not retried.
      const again = processedEvent(record, 'late');
      expect(
        await store.finishProcessing(
          record.id,
          holder,
          { status: 'FAILED', reason: 'late' },
          again,
          at(HOUR),
        ),
      ).toBe(false);
      expect(await store.renewLease(record.id, holder, at(HOUR), 0.1)).toBe(false);
      expect(await store.retryProcessing(record.id, holder, 1, at(HOUR), at(HOUR))).toBe(false);
      expect(await claimIds(store, at(24 * HOUR))).toEqual([]);
      expect(await store.find(record.id)).toEqual(ready);
      expect(await pendingIds(store)).toEqual([event.id]);
    });

    it('records FAILED with its reason and one processed event, for the holder only', async () => {
      const record = await queued(store, personId());
      await publishAll(store);
      const stale = uuidv7();
      const holder = uuidv7();
      await claimIds(store, T0, stale);
      await store.renewLease(record.id, stale, at(MINUTE), 0.3);
      await claimIds(store, at(MINUTE), holder);

      const reason = 'The video cannot be decoded';
      const staleEvent = processedEvent(record, reason);
      expect(
        await store.finishProcessing(record.id, stale, { status: 'FAILED', reason }, staleEvent, at(MINUTE)),
      ).toBe(false);
      expect(await store.pendingEvents(10)).toEqual([]);

      const event = processedEvent(record, reason);
      expect(
        await store.finishProcessing(record.id, holder, { status: 'FAILED', reason }, event, at(2 * MINUTE)),
      ).toBe(true);
      const failed: MediaRecord = {
        ...record,
        status: 'FAILED',
        failureReason: reason,
        progress: null,
        nextAttemptAt: null,
        leaseUntil: null,
        leaseToken: null,
        updatedAt: at(2 * MINUTE),
      };
      expect(await store.find(record.id)).toEqual(failed);
      expect(await store.pendingEvents(10)).toEqual([event]);
      const facts = imageFacts(record);
      expect(
        await store.finishProcessing(
          record.id,
          holder,
          { status: 'READY', facts },
          processedEvent(record),
          at(HOUR),
        ),
      ).toBe(false);
      expect(await store.find(record.id)).toEqual(failed);
      expect(await pendingIds(store)).toEqual([event.id]);
      expect(await claimIds(store, at(24 * HOUR))).toEqual([]);
    });

    it('releases a claim for a later attempt, for the holder only', async () => {
      const record = await queued(store, personId());
      const stale = uuidv7();
      const holder = uuidv7();
      await claimIds(store, T0, stale);
      await claimIds(store, at(MINUTE), holder);

      expect(await store.retryProcessing(record.id, stale, 1, at(MINUTE), at(MINUTE))).toBe(false);
      expect(await store.find(record.id)).toMatchObject({ leaseToken: holder, attempts: 0 });

      expect(await store.retryProcessing(record.id, holder, 1, at(10 * MINUTE), at(2 * MINUTE))).toBe(true);
      expect(await store.find(record.id)).toEqual({
        ...record,
        status: 'UPLOADED',
        attempts: 1,
        nextAttemptAt: at(10 * MINUTE),
        leaseUntil: null,
        leaseToken: null,
        updatedAt: at(2 * MINUTE),
      });
      // Released: its token holds nothing any more; it is due again at the next attempt, not before.
      expect(await store.renewLease(record.id, holder, at(HOUR), null)).toBe(false);
      expect(await store.retryProcessing(record.id, holder, 2, at(MINUTE), at(MINUTE))).toBe(false);
      expect(await claimIds(store, at(10 * MINUTE - 1))).toEqual([]);
      const next = uuidv7();
      const [again] = await store.claimDue(at(10 * MINUTE), at(11 * MINUTE), next, 10);
      expect(again).toMatchObject({ id: record.id, attempts: 1, leaseToken: next, status: 'PROCESSING' });
      expect(await store.pendingEvents(10)).toHaveLength(1); // the uploaded event only
    });

    it('cannot finish, renew or retry an item deleted while it was processed', async () => {
      const record = await queued(store, personId());
      await publishAll(store);
      const token = uuidv7();
      await claimIds(store, T0, token);
      const deleted = deletedEvent(record);
      expect(await store.delete(record.id, deleted)).toMatchObject({ id: record.id, status: 'PROCESSING' });

      const facts = imageFacts(record);
      expect(
        await store.finishProcessing(
          record.id,
          token,
          { status: 'READY', facts },
          processedEvent(record),
          T0,
        ),
      ).toBe(false);
      expect(
        await store.finishProcessing(
          record.id,
          token,
          { status: 'FAILED', reason: 'x' },
          processedEvent(record, 'x'),
          T0,
        ),
      ).toBe(false);
      expect(await store.renewLease(record.id, token, at(MINUTE), 0.5)).toBe(false);
      expect(await store.retryProcessing(record.id, token, 1, at(MINUTE), T0)).toBe(false);
      expect(await store.find(record.id)).toBeNull();
      expect(await store.pendingEvents(10)).toEqual([deleted]);
    });

    it('sets the visibility of an item', async () => {
      const ownerId = personId();
      const record = makeMedia(ownerId);
      const other = makeMedia(ownerId);
      await store.insert(record);
      await store.insert(other);

      const shown = { ...record, visibility: 'PUBLIC' as const, updatedAt: at(SECOND) };
      expect(await store.setVisibility(record.id, 'PUBLIC', at(SECOND))).toEqual(shown);
      expect(await store.find(record.id)).toEqual(shown);
      expect(await store.setVisibility(record.id, 'PRIVATE', at(MINUTE))).toEqual({
        ...record,
        updatedAt: at(MINUTE),
      });
      expect(await store.find(other.id)).toEqual(other);
      expect(await store.setVisibility(uuidv7(), 'PUBLIC', at(SECOND))).toBeNull();
      expect(await store.pendingEvents(10)).toEqual([]);
    });

    it('deletes an item with its deleted event, once', async () => {
      const ownerId = personId();
      const record = await uploaded(store, ownerId);
      const kept = await uploaded(store, ownerId);
      await publishAll(store);

      const event = deletedEvent(record);
      expect(await store.delete(record.id, event)).toEqual(record);
      expect(await store.find(record.id)).toBeNull();
      expect(await store.find(kept.id)).toEqual(kept);
      expect(await store.pendingEvents(10)).toEqual([event]);

      expect(await store.delete(record.id, deletedEvent(record))).toBeNull();
      expect(await store.delete(uuidv7(), deletedEvent(record))).toBeNull();
      expect(await pendingIds(store)).toEqual([event.id]);
    });

    it('removes all media of a person and nobody else’s, once per event, one event per item', async () => {
      const ada = personId();
      const bob = personId();
      const adas = [
        await uploaded(store, ada),
        makeMedia(ada),
        makeMedia(ada, { status: 'READY', kind: 'VIDEO', visibility: 'PUBLIC' }),
      ];
      for (const record of adas.slice(1)) await store.insert(record);
      const bobs = await uploaded(store, bob);
      await publishAll(store);
      const eventId = uuidv7();

      const eventOf = (record: MediaRecord) => deletedEvent(record);
      const removed = await store.removeOwner(CONSUMER, eventId, ada, eventOf);
      expect(removed).not.toBe('duplicate');
      const removedRecords = removed === 'duplicate' ? [] : removed;
      expect([...removedRecords].sort((a, b) => (a.id < b.id ? -1 : 1))).toEqual(adas);
      // One deleted event per removed item, made by `eventOf`.
      const pending = await store.pendingEvents(100);
      expect(pending.map((e) => e.type)).toEqual(Array(3).fill('aiva.media.media.deleted.v1'));
      expect(pending.map((e) => (e.data as { id: string }).id).sort()).toEqual(sortedIds(adas));
      expect(await store.listByOwner(ada, { first: 10 })).toEqual({ media: [], hasNextPage: false });
      expect(await store.findMany(ids(adas))).toEqual([]);
      expect(await store.usedBytes(ada)).toBe(0);
      expect(await store.find(bobs.id)).toEqual(bobs);

      // The same event again removes nothing (here: what came for Ada since) and writes no event.
      const since = makeMedia(ada);
      await store.insert(since);
      expect(await store.removeOwner(CONSUMER, eventId, ada, eventOf)).toBe('duplicate');
      expect(await store.find(since.id)).toEqual(since);
      expect(await store.pendingEvents(100)).toHaveLength(3);
      expect(await store.removeOwner(CONSUMER, uuidv7(), ada, eventOf)).toEqual([since]);
      expect(await store.find(since.id)).toBeNull();
      expect(await store.pendingEvents(100)).toHaveLength(4);

      // A person with nothing: nothing removed, no event.
      expect(await store.removeOwner(CONSUMER, uuidv7(), personId(), eventOf)).toEqual([]);
      expect(await store.pendingEvents(100)).toHaveLength(4);
    });

    it('removes uploads not finished by their URL’s end, and nothing else', async () => {
      const ownerId = personId();
      const expired = [
        makeMedia(ownerId, { uploadExpiresAt: at(-HOUR) }),
        makeMedia(ownerId, { uploadExpiresAt: at(-MINUTE) }),
        makeMedia(ownerId, { uploadExpiresAt: T0 }),
      ];
      const open = makeMedia(ownerId, { uploadExpiresAt: at(1) });
      for (const record of [...expired, open]) await store.insert(record);
      const done = await uploaded(store, ownerId, { overrides: { uploadExpiresAt: at(-HOUR) } });
      const failed = makeMedia(ownerId, { status: 'FAILED', failureReason: 'x', uploadExpiresAt: at(-HOUR) });
      await store.insert(failed);
      await publishAll(store);

      expect(await store.removeExpiredUploads(T0, 0)).toEqual([]);
      const first = await store.removeExpiredUploads(T0, 2);
      expect(first).toHaveLength(2);
      const rest = await store.removeExpiredUploads(T0, 10);
      const all = [...first, ...rest].sort((a, b) => (a.id < b.id ? -1 : 1));
      expect(all).toEqual(expired);
      expect(await store.removeExpiredUploads(T0, 10)).toEqual([]);
      expect(await store.findMany(ids(expired))).toEqual([]);
      expect(await store.find(open.id)).toEqual(open);
      expect(await store.find(done.id)).toEqual({ ...done, updatedAt: T0 });
      expect(await store.find(failed.id)).toEqual(failed);
      expect(await store.pendingEvents(10)).toEqual([]);
      expect(ids(await store.removeExpiredUploads(at(1), 10))).toEqual([open.id]);
    });

    it('counts the items referencing a source key', async () => {
      const ada = personId();
      const one = await uploaded(store, ada, { content: 'same bytes' });
      const two = await uploaded(store, ada, { content: 'same bytes' });
      await uploaded(store, ada, { content: 'other bytes' });
      expect(one.sourceKey).toBe(two.sourceKey);
      const key = one.sourceKey ?? '';

      expect(await store.countBySourceKey(key)).toBe(2);
      await store.delete(one.id, deletedEvent(one));
      expect(await store.countBySourceKey(key)).toBe(1);
      await store.delete(two.id, deletedEvent(two));
      expect(await store.countBySourceKey(key)).toBe(0);
    });

    it('finds another READY item of the person with the same bytes', async () => {
      const ada = personId();
      const bob = personId();
      const content = 'the same photo';
      const sha256 = sha256Of(content);
      const fresh = await uploaded(store, ada, { content });
      const other = await uploaded(store, ada, { content });
      // Uploaded, processing, failed, or someone else's: none is a READY copy of Ada's.
      await claimIds(store, T0); // nothing queued: nothing claimed
      await queue(store, other.id);
      expect(await claimIds(store, T0)).toEqual([other.id]);
      await store.insert(makeMedia(ada, { status: 'FAILED', failureReason: 'x', sha256 }));
      await store.insert(makeMedia(bob, { status: 'READY', sha256 }));
      expect(await store.findReadyBySha(ada, sha256, fresh.id)).toBeNull();

      const ready = makeMedia(ada, { status: 'READY', sha256, variants: imageVariants(fresh) });
      await store.insert(ready);
      expect(await store.findReadyBySha(ada, sha256, fresh.id)).toEqual(ready);
      expect(await store.findReadyBySha(ada, sha256, other.id)).toEqual(ready);
      // Never the item itself, another hash, or another person.
      expect(await store.findReadyBySha(ada, sha256, ready.id)).toBeNull();
      expect(await store.findReadyBySha(ada, sha256Of('other'), fresh.id)).toBeNull();
      expect(await store.findReadyBySha(personId(), sha256, fresh.id)).toBeNull();
    });

    it('closes idempotently', async () => {
      await store.close();
      await store.close();
    });
  });
}
