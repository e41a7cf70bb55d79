import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { openSqliteDatabase, type SqliteDatabase } from './sqlite-driver.js';
import { configureSqlite, migrateSqlite, type SqliteMigrationOptions } from './sqlite-migrations.js';

/** Whether `file` names an in-memory database rather than a file. */
export function isInMemorySqlite(file: string): boolean {
  return file === ':memory:' || file === '';
}

/**
 * Opens a store's SQLite database the way every AIVA store does: creates the file's directory when missing,
 * applies the connection settings (`configureSqlite`) and the pending migrations (`migrateSqlite`). The
 * database is closed again when that fails.
 */
export function openMigratedSqlite(file: string, migration: SqliteMigrationOptions): SqliteDatabase {
  if (!isInMemorySqlite(file)) mkdirSync(dirname(file), { recursive: true });
  const db = openSqliteDatabase(file);
  try {
    configureSqlite(db);
    migrateSqlite(db, migration);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/** The part of a store every SQLite store implements the same way. */
export interface SqliteStoreLifecycle {
  /** Runs a trivial query (throws once the database is closed). */
  ping(): Promise<void>;
  /** Closes the database; calling it again is harmless. */
  close(): Promise<void>;
}

/** `ping` and `close` over the store's database (prepares the ping statement at once). */
export function sqliteStoreLifecycle(db: SqliteDatabase): SqliteStoreLifecycle {
  const ping = db.prepare<[], number>('SELECT 1').pluck();
  return {
    async ping() {
      ping.get();
    },
    async close() {
      if (db.open) db.close();
    },
  };
}
