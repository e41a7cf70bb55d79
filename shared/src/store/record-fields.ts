// The field table of a stored record, written once per record type (usually next to the store's port) and read
// by both adapters: `sqliteTable` maps it to columns, `mongoCollection` (`@aiva/shared/mongo`) to a document.
// Kept free of any driver so that the port file can import it.
//
// A store on the kit, in short (users and auth are the worked examples):
//   port:    export const NOTE_FIELDS: RecordFields<NoteRecord> = { id: 'string', readAt: 'date?', ... };
//   SQLite:  const store = openSqliteEventStore({ file, migrations, constraints: { unique: [...] } });
//            const notes = sqliteTable(store.db, { table: 'notes', fields: NOTE_FIELDS });
//            const inbox = notes.pager('user_id = @userId AND (@unread = 0 OR read_at IS NULL)');
//            const add = store.transaction((note, event) => { notes.insert(note); store.outbox.write(event); });
//            inbox.page({ first, afterId, order: 'desc' }, { userId, unread: 1 });
//   MongoDB: const store = await connectMongoEventStore({ url, models: (c) => ({ Note: c.model(...) }), mapError });
//            const notes = mongoCollection(store.models.Note, { fields: NOTE_FIELDS });
//            await store.write(async (session) => { await notes.insert(note, session); await store.outbox.write([event], session); });
//            await notes.page({ first, afterId, order: 'desc', filter: { userId, readAt: null } });
//   Both:    `store.once(consumer, eventId, effect)` for idempotent consumers; `...store.relay` for the outbox relay.

/**
 * How one field of a record is stored:
 * - `string`: text; a missing value (a MongoDB document of older code) reads as `''`.
 * - `number`: a number; a missing value reads as `0`.
 * - `value`: a string, number or `null`, stored as is; a missing value reads as `null`.
 * - `boolean`: SQLite `INTEGER` 0/1; MongoDB boolean.
 * - `date` / `date?`: a `Date` (or `null` for `date?`); SQLite ISO-8601 UTC text (compares correctly as text),
 *   MongoDB date.
 * - `json`: an array or object; SQLite JSON text, MongoDB stored as is. Read and written as a copy.
 * - `list`: an array (of strings, say); like `json`, but anything that is not an array reads as `[]`.
 * - `optional`: a string the record may lack (`field?: string`); SQLite `NULL`, MongoDB `null` when absent.
 */
export type FieldKind =
  | 'string'
  | 'number'
  | 'value'
  | 'boolean'
  | 'date'
  | 'date?'
  | 'json'
  | 'list'
  | 'optional';

/** Every field of the record `R`, with how it is stored. A missing or extra field is a type error. */
export type RecordFields<R> = { readonly [K in keyof R]-?: FieldKind };

/** How an adapter stores one kind of field: `write` turns the record's value into the stored one, `read` back. */
export interface FieldConversion {
  write(value: unknown): unknown;
  /** `undefined` means "absent from the record" (an `optional` field with nothing stored). */
  read(value: unknown): unknown;
}

/** An adapter's conversion of every field kind. */
export type FieldConversions = Readonly<Record<FieldKind, FieldConversion>>;

/** The kinds both adapters store alike: the value as is, and a default when it is missing. */
export const PLAIN_FIELD_CONVERSIONS: Pick<FieldConversions, 'string' | 'number' | 'value'> = {
  string: { write: (value) => value, read: (value) => value ?? '' },
  number: { write: (value) => value, read: (value) => value ?? 0 },
  value: { write: (value) => value ?? null, read: (value) => value ?? null },
};

/** An array read back: a copy, or `[]` for anything else (a missing field, malformed data). */
export function listOf(value: unknown): unknown[] {
  return Array.isArray(value) ? copyJson(value) : [];
}

/** Record ↔ stored object mapping (a row, a document). */
export interface StoredFieldsCodec<R> {
  write(record: R): Record<string, unknown>;
  read(stored: Record<string, unknown>): R;
}

export interface StoredFieldsOptions<R> {
  fields: RecordFields<R>;
  conversions: FieldConversions;
  /** The stored name of a field (a column in snake_case, a document path). */
  name(field: string): string;
}

/** The mapping of a field table through an adapter's conversions (the generic part of `sqliteRows`, `mongoDocs`). */
export function storedFields<R>(options: StoredFieldsOptions<R>): StoredFieldsCodec<R> {
  const entries = (Object.entries(options.fields) as Array<[string, FieldKind]>).map(
    ([field, kind]) => [field, options.name(field), options.conversions[kind]] as const,
  );
  return {
    write(record) {
      const source = record as Record<string, unknown>;
      const stored: Record<string, unknown> = {};
      for (const [field, name, conversion] of entries) stored[name] = conversion.write(source[field]);
      return stored;
    },
    read(stored) {
      const record: Record<string, unknown> = {};
      for (const [field, name, conversion] of entries) {
        const value = conversion.read(stored[name]);
        if (value !== undefined) record[field] = value;
      }
      return record as R;
    },
  };
}

/** A page of a keyset-paginated list. */
export interface Page<T> {
  items: T[];
  /** Whether more items follow the last one, in the same order. */
  hasNextPage: boolean;
}

/** The sort direction of a list by key: `asc` (oldest UUIDv7 first) or `desc` (newest first). */
export type PageOrder = 'asc' | 'desc';

/** What a keyset-paginated list is asked for. */
export interface PageRequest {
  /** How many items at most (negative or fractional values are floored at 0). */
  first: number;
  /** The key of the last item of the previous page: the page starts after it, in `order`. */
  afterId?: string | undefined;
  /** Default `asc`. */
  order?: PageOrder | undefined;
}

/** `first` as a row count: a whole number, at least 0. */
export function pageLimit(first: number): number {
  return Math.max(0, Math.floor(first));
}

/** The page of `limit` items out of `rows`, fetched with `limit + 1` (the extra one only says a next page exists). */
export function pageOf<Row, T>(rows: readonly Row[], limit: number, map: (row: Row) => T): Page<T> {
  return { items: rows.slice(0, limit).map(map), hasNextPage: rows.length > limit };
}

/** `createdAt` → `created_at`: the column of a record field. */
export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** A copy of a JSON-like value (arrays and plain objects), so stored and returned values never alias. */
export function copyJson<T>(value: T): T {
  return value === null || value === undefined ? value : structuredClone(value);
}
