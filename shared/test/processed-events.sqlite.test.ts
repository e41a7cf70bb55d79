import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqliteDatabase } from '../src/store/sqlite-driver.js';
import { openMigratedSqlite } from '../src/store/sqlite-open.js';
import {
  createSqliteProcessedEvents,
  SQLITE_PROCESSED_EVENTS_SCHEMA,
  type SqliteProcessedEvents,
} from '../src/store/sqlite-processed-events.js';

const DAY_MS = 24 * 60 * 60 * 1000;

describe('SQLite processed events (runOnce)', () => {
  let db: SqliteDatabase;
  let processed: SqliteProcessedEvents;
  let now = new Date('2026-01-01T00:00:00Z');
  beforeEach(() => {
    db = openMigratedSqlite(':memory:', {
      migrations: [`${SQLITE_PROCESSED_EVENTS_SCHEMA} CREATE TABLE effects (n INTEGER NOT NULL) STRICT;`],
    });
    now = new Date('2026-01-01T00:00:00Z');
    processed = createSqliteProcessedEvents(db, { retentionMs: 30 * DAY_MS, now: () => now });
  });
  afterEach(() => db.close());

  const effects = () => db.prepare('SELECT count(*) AS n FROM effects').get() as { n: number };
  const effect = () => db.prepare('INSERT INTO effects (n) VALUES (1)').run().changes;

  it('runs the effect once per (consumer, event id), however late the redelivery', () => {
    expect(processed.runOnce('c', 'e1', effect)).toEqual({ duplicate: false, result: 1 });
    expect(processed.has('c', 'e1')).toBe(true);
    now = new Date(now.getTime() + 20 * DAY_MS); // far beyond any JetStream duplicate window
    expect(processed.runOnce('c', 'e1', effect)).toEqual({ duplicate: true });
    expect(processed.runOnce('other', 'e1', effect)).toEqual({ duplicate: false, result: 1 });
    expect(effects().n).toBe(2);
  });

  it('rolls the effect and the record back together when the effect throws', () => {
    expect(() =>
      processed.runOnce('c', 'e1', () => {
        effect();
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(effects().n).toBe(0);
    expect(processed.has('c', 'e1')).toBe(false);
    expect(processed.runOnce('c', 'e1', effect)).toEqual({ duplicate: false, result: 1 });
  });

  it('joins an outer transaction: the record goes when the outer one rolls back', () => {
    expect(() =>
      db.transaction(() => {
        processed.runOnce('c', 'e1', effect);
        throw new Error('outer');
      })(),
    ).toThrow('outer');
    expect(processed.has('c', 'e1')).toBe(false);
    expect(effects().n).toBe(0);
  });

  it('prunes ids older than the retention', () => {
    processed.runOnce('c', 'old', effect);
    now = new Date(now.getTime() + 31 * DAY_MS);
    processed.runOnce('c', 'new', effect);
    expect(processed.has('c', 'old')).toBe(false); // pruned inside that runOnce (first prune of this helper)
    expect(processed.has('c', 'new')).toBe(true);
    expect(processed.prune(new Date(now.getTime() + 1))).toBe(1);
  });

  it('refuses an empty consumer or event id', () => {
    expect(() => processed.runOnce('', 'e', effect)).toThrow(/consumer name and an event id/);
    expect(() => processed.runOnce('c', '', effect)).toThrow(/consumer name and an event id/);
  });
});
