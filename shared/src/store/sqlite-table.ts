// The row mechanics every SQLite store repeats for its tables: record ↔ row mapping from a field table, insert,
// full-row update, lookups by key (one or many), delete, count and keyset pagination. A store keeps only the
// queries that are its own (conditional updates, `RETURNING` claims, domain lookups).

import {
  type FieldConversions,
  listOf,
  type Page,
  type PageRequest,
  PLAIN_FIELD_CONVERSIONS,
  pageLimit,
  pageOf,
  type RecordFields,
  snakeCase,
  storedFields,
} from './record-fields.js';
import type { SqliteDatabase, SqliteStatement } from './sqlite-driver.js';

/** A row as better-sqlite3 returns it (`SELECT *`, `RETURNING *`) and takes it (named `@column` parameters). */
export type SqliteRow = Record<string, unknown>;

/** Record ↔ row mapping of one table: columns are the fields in snake_case. */
export interface SqliteRowCodec<R> {
  /** The column of each field (`createdAt` → `created_at`). */
  readonly columns: { readonly [K in keyof R]-?: string };
  toRow(record: R): SqliteRow;
  fromRow(row: SqliteRow): R;
}

/** How SQLite stores each kind (see `FieldKind`). */
const SQLITE_CONVERSIONS: FieldConversions = {
  ...PLAIN_FIELD_CONVERSIONS,
  boolean: {
    write: (value) => (value ? 1 : 0),
    read: (value) => value === 1 || value === 1n || value === true,
  },
  date: { write: (value) => (value as Date).toISOString(), read: (value) => new Date(value as string) },
  'date?': {
    write: (value) => (value === null || value === undefined ? null : (value as Date).toISOString()),
    read: (value) => (value === null || value === undefined ? null : new Date(value as string)),
  },
  json: { write: (value) => JSON.stringify(value), read: (value) => JSON.parse(value as string) },
  list: {
    write: (value) => JSON.stringify(value ?? []),
    read: (value) => listOf(JSON.parse(value as string)),
  },
  // Absent from the record when the column is NULL.
  optional: { write: (value) => value ?? null, read: (value) => value ?? undefined },
};

/** The row codec of a field table (see `FieldKind` for how each kind is stored). */
export function sqliteRows<R>(fields: RecordFields<R>): SqliteRowCodec<R> {
  const codec = storedFields({ fields, conversions: SQLITE_CONVERSIONS, name: snakeCase });
  const columns = Object.fromEntries(Object.keys(fields).map((name) => [name, snakeCase(name)])) as {
    [K in keyof R]-?: string;
  };
  return { columns, toRow: codec.write, fromRow: codec.read };
}

export interface SqliteTableOptions<R> {
  /** The table's name, as in the store's migrations. */
  table: string;
  /** Every field of the record; each is a column named in snake_case. */
  fields: RecordFields<R>;
  /** The field holding the primary key (a text key, UUIDv7 for ordered lists). Default `id`. */
  key?: keyof R & string;
}

/** A keyset-paginated list over one table, optionally filtered (see `SqliteTable.pager`). */
export interface SqlitePager<R> {
  /**
   * The page of `first` records ordered by key (`asc` by default, `desc` for newest first with UUIDv7 keys),
   * starting after `afterId` (excluded), with `hasNextPage`. `params` binds the filter's named parameters.
   */
  page(request: PageRequest, params?: SqliteRow): Page<R>;
  /** How many rows match the filter (e.g. the unread count), with `params` bound as for `page`. */
  count(params?: SqliteRow): number;
}

/** The common statements of one table, prepared at once. */
export interface SqliteTable<R> extends SqliteRowCodec<R> {
  /** Inserts the record (a duplicate key or unique column throws the driver's constraint error). */
  insert(record: R): void;
  /** Rewrites every column of the row with the record's key from the record; false when there is no such row. */
  update(record: R): boolean;
  findById(id: string): R | null;
  /** One query for all ids (duplicates ignored); unknown ids are absent; order not guaranteed. */
  findByIds(ids: readonly string[]): R[];
  /** False when there is no such row. */
  deleteById(id: string): boolean;
  count(): number;
  /**
   * A keyset pager over the rows matching `where` (an SQL condition with named `@parameters`, e.g.
   * `user_id = @userId AND (@unreadOnly = 0 OR read_at IS NULL)`), or all rows. An index on the filter's
   * columns and the key serves it. Create pagers when the store opens (they prepare their statements).
   */
  pager(where?: string): SqlitePager<R>;
}

/** The common statements of `options.table` over `db` (prepared at once: create it after the migrations ran). */
export function sqliteTable<R>(db: SqliteDatabase, options: SqliteTableOptions<R>): SqliteTable<R> {
  const codec = sqliteRows(options.fields);
  const { table } = options;
  const key = snakeCase(options.key ?? 'id');
  const names = Object.values(codec.columns) as string[];
  const stmt = {
    insert: db.prepare<[SqliteRow]>(
      `INSERT INTO ${table} (${names.join(', ')}) VALUES (${names.map((c) => `@${c}`).join(', ')})`,
    ),
    update: db.prepare<[SqliteRow]>(
      `UPDATE ${table} SET ${names
        .filter((c) => c !== key)
        .map((c) => `${c} = @${c}`)
        .join(', ')} WHERE ${key} = @${key}`,
    ),
    findById: db.prepare<[string], SqliteRow>(`SELECT * FROM ${table} WHERE ${key} = ?`),
    findByIds: db.prepare<[string], SqliteRow>(
      `SELECT * FROM ${table} WHERE ${key} IN (SELECT value FROM json_each(?))`,
    ),
    deleteById: db.prepare<[string]>(`DELETE FROM ${table} WHERE ${key} = ?`),
    count: db.prepare<[], number>(`SELECT count(*) FROM ${table}`).pluck(),
  };

  return {
    ...codec,
    insert(record) {
      stmt.insert.run(codec.toRow(record));
    },
    update(record) {
      return stmt.update.run(codec.toRow(record)).changes > 0;
    },
    findById(id) {
      const row = stmt.findById.get(id);
      return row ? codec.fromRow(row) : null;
    },
    findByIds(ids) {
      if (ids.length === 0) return [];
      return stmt.findByIds.all(JSON.stringify([...new Set(ids)])).map(codec.fromRow);
    },
    deleteById(id) {
      return stmt.deleteById.run(id).changes > 0;
    },
    count() {
      return stmt.count.get() ?? 0;
    },
    pager(where) {
      return sqlitePager(db, { table, key, where, fromRow: codec.fromRow });
    },
  };
}

interface PagerOptions<R> {
  table: string;
  /** The key column. */
  key: string;
  where?: string | undefined;
  fromRow: (row: SqliteRow) => R;
}

/** The four statements of a keyset pager: both orders, from the start and after a key. */
function sqlitePager<R>(db: SqliteDatabase, options: PagerOptions<R>): SqlitePager<R> {
  const { table, key, fromRow } = options;
  const filter = options.where ? `(${options.where})` : '';
  const prepare = (order: 'ASC' | 'DESC', after: boolean): SqliteStatement<[SqliteRow], SqliteRow> => {
    const conditions = [filter, after ? `${key} ${order === 'ASC' ? '>' : '<'} @afterId` : ''].filter(
      Boolean,
    );
    const whereSql = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
    return db.prepare<[SqliteRow], SqliteRow>(
      `SELECT * FROM ${table}${whereSql} ORDER BY ${key} ${order} LIMIT @limit`,
    );
  };
  const statements = {
    asc: { first: prepare('ASC', false), after: prepare('ASC', true) },
    desc: { first: prepare('DESC', false), after: prepare('DESC', true) },
  };
  const count = db
    .prepare<[SqliteRow], number>(`SELECT count(*) FROM ${table}${filter ? ` WHERE ${filter}` : ''}`)
    .pluck();
  return {
    page({ first, afterId, order = 'asc' }, params = {}) {
      const limit = pageLimit(first);
      const { first: fromStart, after } = statements[order];
      // One row more than asked for: it only tells whether a next page exists.
      const rows =
        afterId === undefined
          ? fromStart.all({ ...params, limit: limit + 1 })
          : after.all({ ...params, afterId, limit: limit + 1 });
      return pageOf(rows, limit, fromRow);
    },
    count(params = {}) {
      return count.get(params) ?? 0;
    },
  };
}
