import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { uuidv7 } from '@aiva/shared';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteMediaStore } from '../src/store/sqlite.js';
import { at, makeMedia, mediaStoreContract, personId, T0 } from './media.store.contract.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(HERE, '../../..');
const SQLITE_ADAPTER = pathToFileURL(join(HERE, '../src/store/sqlite.ts')).href;

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

/**
 * A processing worker in a process of its own (the module below, run by tsx): opens the store on the file given,
 * says `ready`, reads a start time (epoch ms) on stdin and waits for it (so that two workers begin together), then
 * claims batches until none is left and prints the ids it got as JSON.
 */
const CLAIMER = `
import { once } from 'node:events';
import { createInterface } from 'node:readline';
const { openSqliteMediaStore } = await import(process.env.MEDIA_ADAPTER);
const now = new Date(process.env.MEDIA_NOW);
const leaseUntil = new Date(now.getTime() + 60 * 60 * 1000);
const token = process.env.MEDIA_TOKEN;
const store = openSqliteMediaStore({ file: process.env.MEDIA_FILE });
const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\\n');
const [line] = await once(lines, 'line');
lines.close();
const startAt = Number(line);
await new Promise((done) => setTimeout(done, Math.max(0, startAt - Date.now() - 5)));
while (Date.now() < startAt) {} // the last few milliseconds spun, for a close start
const claimed = [];
for (;;) {
  const batch = await store.claimDue(now, leaseUntil, token, 2);
  if (batch.length === 0) break;
  if (batch.some((record) => record.leaseToken !== token)) throw new Error('claimed under another token');
  claimed.push(...batch.map((record) => record.id));
}
await store.close();
process.stdout.write(JSON.stringify(claimed) + '\\n');
`;

/** A claimer process on `file`, started and waiting for `go`. */
async function startClaimer(file: string, now: Date) {
  const child = spawn(
    process.execPath,
    ['--conditions=aiva-source', '--import', 'tsx', '--input-type=module', '--eval', CLAIMER],
    {
      cwd: REPO_ROOT,
      stdio: 'pipe',
      env: {
        ...process.env,
        MEDIA_ADAPTER: SQLITE_ADAPTER,
        MEDIA_FILE: file,
        MEDIA_NOW: now.toISOString(),
        MEDIA_TOKEN: uuidv7(),
      },
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((done, fail) => {
    child.on('error', fail);
    child.on('close', done);
  });
  await new Promise<void>((ready, fail) => {
    child.stdout.on('data', () => {
      if (stdout.startsWith('ready\n')) ready();
    });
    exited.then(() => fail(new Error(`claimer exited before it was ready: ${stderr}`)), fail);
  });
  return {
    /** Starts claiming at `startAt` (epoch ms). */
    go: (startAt: number) => child.stdin.end(`${startAt}\n`),
    /** The ids it claimed. */
    async claimed(): Promise<string[]> {
      const code = await exited;
      expect(stderr).toBe('');
      expect(code).toBe(0);
      return JSON.parse(stdout.slice('ready\n'.length)) as string[];
    },
  };
}

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
    const workers = await Promise.all([startClaimer(file, T0), startClaimer(file, T0)]);
    const startAt = Date.now() + 100;
    for (const worker of workers) worker.go(startAt);
    const [a, b] = await Promise.all(workers.map((worker) => worker.claimed()));

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
