import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { uuidv7 } from '@aiva/shared';
import { race, startRacer } from '@aiva/shared/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteMediaStore } from '../src/store/sqlite.js';
import { at, makeMedia, mediaStoreContract, personId, T0 } from './media.store.contract.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(HERE, '../../..');
const CLAIMER = join(HERE, 'media.store.claimer.ts');

const dir = mkdtempSync(join(tmpdir(), 'aiva-media-sqlite-'));
let n = 0;
/** A fresh database file (in a not-yet-existing subdirectory, which the store must create). */
const freshFile = () => join(dir, `db-${++n}`, 'media.sqlite');

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

mediaStoreContract('sqlite (file)', async () => {
  const file = freshFile();
  const store = openSqliteMediaStore({ file });
  return {
    store,
    // A second connection to the same file: another instance of the subgraph.
    openPeer: async () => openSqliteMediaStore({ file }),
    async cleanup() {
      await store.close();
      rmSync(dirname(file), { recursive: true, force: true });
    },
  };
});

/** A claimer process (see media.store.claimer.ts) on `file`, started and waiting for the start. */
const startClaimer = (file: string, now: Date) =>
  startRacer<string[]>(CLAIMER, [file, now.toISOString(), uuidv7()], { cwd: REPO_ROOT });

describe('SQLite media store', { timeout: 60_000 }, () => {
  it('gives each item to exactly one of two worker processes claiming at the same time', async () => {
    const file = freshFile();
    const store = openSqliteMediaStore({ file });
    const ownerId = personId();
    // Uploaded and queued items (written whole: the contract covers the way there).
    const due = Array.from({ length: 600 }, (_, i) =>
      makeMedia(ownerId, { status: 'UPLOADED', nextAttemptAt: at(-(i % 13) * 1000) }),
    );
    try {
      for (const record of due) await store.insert(record);
    } finally {
      await store.close();
    }

    // Both are started and ready, then begin at one instant: they claim in small batches at the same time.
    const [a, b] = await race(await Promise.all([startClaimer(file, T0), startClaimer(file, T0)]));

    const all = [...(a ?? []), ...(b ?? [])];
    expect(new Set(all).size).toBe(all.length);
    expect([...all].sort()).toEqual(due.map((record) => record.id).sort());
  });

  it('keeps items, their claims and processed events across close and reopen', async () => {
    const file = freshFile();
    const ownerId = personId();
    const record = makeMedia(ownerId, { status: 'UPLOADED', nextAttemptAt: T0 });
    const token = uuidv7();
    const eventId = uuidv7();
    const store = openSqliteMediaStore({ file });
    await store.insert(record);
    expect(await store.queueProcessing('media.test', eventId, record.id, T0)).toBe(true);
    expect((await store.claimDue(T0, at(60_000), token, 10)).map((r) => r.id)).toEqual([record.id]);
    await store.close();

    const reopened = openSqliteMediaStore({ file });
    try {
      expect(await reopened.find(record.id)).toMatchObject({ status: 'PROCESSING', leaseToken: token });
      expect(await reopened.claimDue(at(1000), at(60_000), uuidv7(), 10)).toEqual([]); // still held
      expect(await reopened.renewLease(record.id, token, at(120_000), 0.5)).toBe(true);
      expect(await reopened.queueProcessing('media.test', eventId, record.id, T0)).toBe(false);
    } finally {
      await reopened.close();
    }
  });
});
