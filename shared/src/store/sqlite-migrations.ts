// SQLite helpers shared by the services' embedded stores. They are written against a tiny structural view of
// a better-sqlite3 `Database` (opened with `openSqliteDatabase`): pass the database in.

/** The part of a better-sqlite3 statement the helpers use. */
export interface SqliteStatementLike {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** The part of a better-sqlite3 transaction function the helpers use (`BEGIN IMMEDIATE ... COMMIT`). */
export interface SqliteTransactionLike<T> {
  immediate(): T;
}

/** The part of a better-sqlite3 `Database` the helpers use. A `better-sqlite3` `Database` satisfies it. */
export interface SqliteDatabaseLike {
  prepare(sql: string): SqliteStatementLike;
  exec(sql: string): unknown;
  transaction<T>(fn: () => T): SqliteTransactionLike<T>;
}

export interface ConfigureSqliteOptions {
  /** How long a statement waits for another connection's lock before SQLITE_BUSY (default 5000). */
  busyTimeoutMs?: number;
}

/**
 * The connection settings of every AIVA SQLite store: a busy timeout (several connections, possibly several
 * processes, share a file), WAL (readers do not block the writer; it stays `memory` for in-memory databases),
 * `synchronous = NORMAL` (durable at checkpoints, safe with WAL) and enforced foreign keys (per connection).
 */
export function configureSqlite(db: SqliteDatabaseLike, options: ConfigureSqliteOptions = {}): void {
  const busyTimeoutMs = Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000));
  db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  db.exec('PRAGMA foreign_keys = ON');
}

export interface SqliteMigrationOptions {
  /**
   * Names the schema in the `schema_migrations (component, version)` table, so several stores can share one
   * database file, each with its own migration history. Omit it to record the version in `PRAGMA user_version`
   * instead (one schema per file).
   */
  component?: string;
  /** SQL scripts applied in order; the recorded version is how many ran. Append new steps, never edit old ones. */
  migrations: readonly string[];
  /** For the error message when the file is newer than the code (default: the component, or `database`). */
  label?: string;
}

const SCHEMA_MIGRATIONS_DDL = `CREATE TABLE IF NOT EXISTS schema_migrations (
  component TEXT PRIMARY KEY NOT NULL,
  version   INTEGER NOT NULL
) STRICT`;

/**
 * Applies the pending migrations. Each step runs with its version bump in one `BEGIN IMMEDIATE` transaction
 * that re-reads the version under the write lock, so concurrent openers (threads, processes) apply each step
 * exactly once. Throws when the database records a version newer than `migrations` (code older than data).
 * Returns the version now recorded.
 */
export function migrateSqlite(db: SqliteDatabaseLike, options: SqliteMigrationOptions): number {
  const { component, migrations } = options;
  const label = options.label ?? component ?? 'database';

  const readVersion = (): number => {
    if (component === undefined) {
      const row = db.prepare('PRAGMA user_version').get() as { user_version?: unknown } | undefined;
      return Number(row?.user_version ?? 0);
    }
    db.exec(SCHEMA_MIGRATIONS_DDL);
    const row = db.prepare('SELECT version FROM schema_migrations WHERE component = ?').get(component) as
      | { version?: unknown }
      | undefined;
    return Number(row?.version ?? 0);
  };

  const writeVersion = (version: number): void => {
    if (component === undefined) {
      db.exec(`PRAGMA user_version = ${Math.floor(version)}`);
      return;
    }
    db.prepare(
      `INSERT INTO schema_migrations (component, version) VALUES (?, ?)
       ON CONFLICT (component) DO UPDATE SET version = excluded.version`,
    ).run(component, version);
  };

  for (;;) {
    const step = db.transaction((): number | null => {
      const current = readVersion();
      if (current > migrations.length) {
        throw new Error(
          `${label} schema version ${current} is newer than this code (${migrations.length}); upgrade the service`,
        );
      }
      if (current === migrations.length) return current;
      db.exec(migrations[current] as string);
      writeVersion(current + 1);
      return null;
    });
    const done = step.immediate();
    if (done !== null) return done;
  }
}
