import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AivaError, notFound } from '../src/errors.js';
import { uuidv7 } from '../src/events/uuidv7.js';
import type { RecordFields } from '../src/store/record-fields.js';
import { openMigratedSqlite } from '../src/store/sqlite-open.js';
import { SQLITE_OUTBOX_RELAY_MIGRATION, SQLITE_OUTBOX_SCHEMA } from '../src/store/sqlite-outbox.js';
import { SQLITE_PROCESSED_EVENTS_SCHEMA } from '../src/store/sqlite-processed-events.js';
import {
  mapSqliteConstraint,
  openSqliteEventStore,
  type SqliteEventStore,
} from '../src/store/sqlite-store.js';
import { sqliteRows, sqliteTable } from '../src/store/sqlite-table.js';
import { userCreated } from '../src/testing/index.js';

/** A record with every field kind, shaped like a per-user notification. */
interface Note {
  id: string;
  userId: string;
  title: string;
  priority: number;
  link: string | null;
  important: boolean;
  createdAt: Date;
  readAt: Date | null;
  meta: { tags: string[] };
  labels: string[];
  topic?: string;
}

const NOTE_FIELDS: RecordFields<Note> = {
  id: 'string',
  userId: 'string',
  title: 'string',
  priority: 'number',
  link: 'value',
  important: 'boolean',
  createdAt: 'date',
  readAt: 'date?',
  meta: 'json',
  labels: 'list',
  topic: 'optional',
};

const NOTES_DDL = `
  CREATE TABLE notes (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES owners (id),
    title      TEXT NOT NULL,
    priority   INTEGER NOT NULL,
    link       TEXT NULL,
    important  INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    read_at    TEXT NULL,
    meta       TEXT NOT NULL,
    labels     TEXT NOT NULL,
    topic      TEXT NULL
  ) STRICT;
  CREATE INDEX notes_user ON notes (user_id, id);
`;
const OWNERS_DDL = `
  CREATE TABLE owners (id TEXT PRIMARY KEY NOT NULL, email TEXT NOT NULL UNIQUE, handle TEXT NOT NULL) STRICT;
  CREATE UNIQUE INDEX owners_handle_lower ON owners (lower(handle));
`;

function note(userId: string, overrides: Partial<Note> = {}): Note {
  return {
    id: uuidv7(),
    userId,
    title: 'Hello',
    priority: 2,
    link: null,
    important: false,
    createdAt: new Date('2026-01-02T03:04:05.678Z'),
    readAt: null,
    meta: { tags: ['a'] },
    labels: ['x', 'y'],
    ...overrides,
  };
}

describe('store kit: sqliteRows', () => {
  const codec = sqliteRows(NOTE_FIELDS);

  it('maps fields to snake_case columns, and every kind there and back', () => {
    expect(codec.columns).toMatchObject({ userId: 'user_id', createdAt: 'created_at', readAt: 'read_at' });
    const record = note('u1', {
      link: 'https://example.com',
      important: true,
      readAt: new Date('2026-02-01T00:00:00.000Z'),
      topic: 'billing',
    });
    const row = codec.toRow(record);
    expect(row).toEqual({
      id: record.id,
      user_id: 'u1',
      title: 'Hello',
      priority: 2,
      link: 'https://example.com',
      important: 1,
      created_at: '2026-01-02T03:04:05.678Z',
      read_at: '2026-02-01T00:00:00.000Z',
      meta: '{"tags":["a"]}',
      labels: '["x","y"]',
      topic: 'billing',
    });
    expect(codec.fromRow(row)).toEqual(record);
  });

  it('stores absent values as NULL and reads an optional field back as absent', () => {
    const record = note('u1');
    const row = codec.toRow(record);
    expect(row).toMatchObject({ link: null, read_at: null, topic: null, important: 0 });
    const back = codec.fromRow(row);
    expect(back).toEqual(record);
    expect('topic' in back).toBe(false);
    // A list column that is not an array reads as empty.
    expect(codec.fromRow({ ...row, labels: '{"not":"a list"}' }).labels).toEqual([]);
  });
});

describe('store kit: sqliteTable', () => {
  let store: SqliteEventStore;
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'aiva-store-kit-'));
    store = openSqliteEventStore({
      file: join(dir, 'kit.sqlite'),
      migrations: [
        `${OWNERS_DDL} ${NOTES_DDL} ${SQLITE_OUTBOX_SCHEMA}`,
        `${SQLITE_OUTBOX_RELAY_MIGRATION} ${SQLITE_PROCESSED_EVENTS_SCHEMA}`,
      ],
      label: 'store kit test',
      constraints: {
        unique: [
          { target: 'owners.email', message: 'Email taken', field: 'email' },
          { target: 'owners_handle_lower', message: 'Handle taken', field: 'handle' },
          { target: 'owners.id', message: 'Id taken', field: 'id' },
        ],
        foreignKey: () => notFound('No such owner', { field: 'userId' }),
      },
    });
    store.db
      .prepare("INSERT INTO owners (id, email, handle) VALUES ('u1', 'a@x', 'Ada'), ('u2', 'b@x', 'Bob')")
      .run();
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const notes = () => sqliteTable(store.db, { table: 'notes', fields: NOTE_FIELDS });

  it('inserts, finds one and many, updates, counts and deletes by key', () => {
    const table = notes();
    const a = note('u1');
    const b = note('u2', { topic: 'x' });
    table.insert(a);
    table.insert(b);
    expect(table.findById(a.id)).toEqual(a);
    expect(table.findById('nope')).toBeNull();
    const many = table.findByIds([b.id, a.id, a.id, 'nope']);
    expect(many.map((n) => n.id).sort()).toEqual([a.id, b.id].sort());
    expect(table.findByIds([])).toEqual([]);
    expect(table.count()).toBe(2);

    const read = { ...a, readAt: new Date('2026-03-01T00:00:00.000Z'), meta: { tags: [] } };
    expect(table.update(read)).toBe(true);
    expect(table.findById(a.id)).toEqual(read);
    expect(table.update(note('u1'))).toBe(false);

    expect(table.deleteById(a.id)).toBe(true);
    expect(table.deleteById(a.id)).toBe(false);
    expect(table.count()).toBe(1);
  });

  it('pages by key in both directions, with a filter, until the last page', () => {
    const table = notes();
    const mine = Array.from({ length: 7 }, (_, i) => note('u1', i % 2 === 0 ? {} : { readAt: new Date() }));
    for (const n of mine) {
      table.insert(n);
      table.insert(note('u2')); // interleaved rows of another user, filtered out
    }
    const pager = table.pager('user_id = @userId AND (@unreadOnly = 0 OR read_at IS NULL)');
    const collect = (order: 'asc' | 'desc', unreadOnly: 0 | 1, first: number) => {
      const ids: string[] = [];
      const pages: boolean[] = [];
      let afterId: string | undefined;
      for (;;) {
        const page = pager.page({ first, afterId, order }, { userId: 'u1', unreadOnly });
        ids.push(...page.items.map((n) => n.id));
        pages.push(page.hasNextPage);
        if (!page.hasNextPage) return { ids, pages };
        afterId = page.items.at(-1)?.id;
      }
    };
    const ascending = mine.map((n) => n.id);
    const unread = mine.filter((n) => n.readAt === null).map((n) => n.id);

    expect(collect('asc', 0, 3)).toEqual({ ids: ascending, pages: [true, true, false] });
    expect(collect('desc', 0, 3).ids).toEqual([...ascending].reverse());
    expect(collect('desc', 1, 3)).toEqual({ ids: [...unread].reverse(), pages: [true, false] });
    expect(collect('asc', 1, 4)).toEqual({ ids: unread, pages: [false] });
    expect(pager.count({ userId: 'u1', unreadOnly: 1 })).toBe(unread.length);
    expect(pager.count({ userId: 'u1', unreadOnly: 0 })).toBe(7);
    expect(table.pager().count()).toBe(14);

    // Newest first, after the newest: the rest; zero asked for: nothing, but a next page.
    const newest = ascending.at(-1);
    expect(
      pager.page({ first: 10, afterId: newest, order: 'desc' }, { userId: 'u1', unreadOnly: 0 }).items,
    ).toHaveLength(6);
    expect(pager.page({ first: 0 }, { userId: 'u1', unreadOnly: 0 })).toEqual({
      items: [],
      hasNextPage: true,
    });
    expect(pager.page({ first: 5 }, { userId: 'nobody', unreadOnly: 0 })).toEqual({
      items: [],
      hasNextPage: false,
    });
  });

  it('pages a whole table ascending without a filter', () => {
    const table = notes();
    const all = [note('u1'), note('u2'), note('u1')];
    for (const n of all) table.insert(n);
    const pager = table.pager();
    const first = pager.page({ first: 2 });
    expect(first.items.map((n) => n.id)).toEqual([all[0]?.id, all[1]?.id]);
    expect(first.hasNextPage).toBe(true);
    expect(pager.page({ first: 2, afterId: all[1]?.id })).toEqual({ items: [all[2]], hasNextPage: false });
  });

  it('maps unique violations (column, expression index, primary key) and foreign keys; leaves others alone', () => {
    const insertOwner = store.transaction((id: string, email: string, handle: string) => {
      store.db.prepare('INSERT INTO owners (id, email, handle) VALUES (?, ?, ?)').run(id, email, handle);
    });
    const expectConflict = (fn: () => unknown, field: string) => {
      try {
        fn();
        expect.unreachable('should have thrown');
      } catch (error) {
        expect(error).toBeInstanceOf(AivaError);
        expect(error).toMatchObject({ extensions: { code: 'CONFLICT', field } });
      }
    };
    expectConflict(() => insertOwner('u3', 'a@x', 'Cy'), 'email');
    expectConflict(() => insertOwner('u3', 'c@x', 'ADA'), 'handle');
    expectConflict(() => insertOwner('u1', 'c@x', 'Cy'), 'id');
    expect(() => store.guard(() => notes().insert(note('ghost')))).toThrow(
      expect.objectContaining({
        extensions: expect.objectContaining({ code: 'NOT_FOUND', field: 'userId' }),
      }),
    );
    // A unique violation no mapping names passes through as the driver's error.
    const dup = note('u1');
    notes().insert(dup);
    let raw: unknown;
    try {
      store.guard(() => notes().insert(dup));
    } catch (error) {
      raw = error;
    }
    expect(raw).not.toBeInstanceOf(AivaError);
    expect((raw as { code?: string }).code).toBe('SQLITE_CONSTRAINT_PRIMARYKEY');
    expect(mapSqliteConstraint('not an error', { unique: [] })).toBe('not an error');
  });

  it('commits the events of a write with it, and rolls them back with it', async () => {
    const table = notes();
    const add = store.transaction((n: Note, fail: boolean) => {
      table.insert(n);
      store.outbox.write([userCreated(), userCreated()]);
      if (fail) store.db.prepare("INSERT INTO owners (id, email, handle) VALUES ('u1', 'z@x', 'Zed')").run();
    });

    add(note('u1'), false);
    expect(table.count()).toBe(1);
    expect(await store.relay.outboxStats()).toEqual({ pending: 2, quarantined: 0 });

    expect(() => add(note('u1'), true)).toThrow(
      expect.objectContaining({ extensions: expect.objectContaining({ field: 'id' }) }),
    );
    expect(table.count()).toBe(1);
    expect(await store.relay.outboxStats()).toEqual({ pending: 2, quarantined: 0 });
  });

  it('runs an effect once per event id, recording it with the effect and its events', async () => {
    const table = notes();
    const effect = () => {
      table.insert(note('u1'));
      store.outbox.write(userCreated());
      return 'done' as const;
    };
    expect(store.once('c', 'e1', effect)).toBe('done');
    expect(store.once('c', 'e1', effect)).toBe('duplicate');
    expect(table.count()).toBe(1);
    expect(await store.relay.outboxStats()).toMatchObject({ pending: 1 });

    // A failing effect writes nothing and records nothing: the redelivery runs it again.
    expect(() =>
      store.once('c', 'e2', () => {
        effect();
        table.insert(note('ghost'));
      }),
    ).toThrow(expect.objectContaining({ extensions: expect.objectContaining({ code: 'NOT_FOUND' }) }));
    expect(table.count()).toBe(1);
    expect(store.processed.has('c', 'e2')).toBe(false);
    expect(await store.relay.outboxStats()).toMatchObject({ pending: 1 });
  });
});

describe('store kit: openSqliteEventStore', () => {
  it('refuses (and closes) a schema without the outbox or processed events tables', () => {
    expect(() =>
      openSqliteEventStore({
        file: ':memory:',
        migrations: [NOTES_DDL.replace('REFERENCES owners (id)', '')],
      }),
    ).toThrow(/no such table/);
    // The plain open of the same schema works.
    const db = openMigratedSqlite(':memory:', { migrations: [SQLITE_OUTBOX_SCHEMA] });
    db.close();
  });
});
