// The one place that loads a better-sqlite3 build. Two majors are installed, under two names:
//   - `better-sqlite3` (12.x, V8/NAN addon, compiled against the running Node's headers). Works on Node 20/21,
//     but on Node 24 (headers >= 24.19) a statement finalised at GC aborts the process
//     (`node::RemoveEnvironmentCleanupHook ... Assertion failed: (env) != nullptr` in `Statement::~Statement`).
//   - `better-sqlite3-napi` (npm alias of better-sqlite3 13.x, Node-API, ships prebuilt binaries). Fixes that,
//     but needs Node >= 22 (and crashes on Node 20). It is an optional dependency, so an install where it is
//     missing or unusable still succeeds; pnpm does not even install it on Node < 22 (engines mismatch).
// Node >= 22 uses 13 when it loads (falling back to 12 with a warning), Node < 22 always uses 12.
// The API of both majors is the one `@types/better-sqlite3` describes.
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { createLogger } from '../log.js';

/** A better-sqlite3 connection (either major). */
export type SqliteDatabase = BetterSqlite3.Database;
/** The options of `new Database(file, options)`. */
export type SqliteDatabaseOptions = BetterSqlite3.Options;
/** A prepared statement of a {@link SqliteDatabase}. */
export type SqliteStatement<
  BindParameters extends unknown[] | object = unknown[],
  Result = unknown,
> = BetterSqlite3.Statement<BindParameters, Result>;

type DatabaseConstructor = typeof BetterSqlite3;

/** The Node-API build (better-sqlite3 >= 13), installed as an npm alias. */
export const SQLITE_NAPI_PACKAGE = 'better-sqlite3-napi';
/** The NAN build (better-sqlite3 12), for Node < 22. */
export const SQLITE_LEGACY_PACKAGE = 'better-sqlite3';
/** The first Node major the Node-API build supports. */
export const SQLITE_NAPI_MIN_NODE_MAJOR = 22;

export type SqliteDriverPackage = typeof SQLITE_NAPI_PACKAGE | typeof SQLITE_LEGACY_PACKAGE;

/** Which build serves this process (for logs and diagnostics). */
export interface SqliteDriverInfo {
  /** The installed name the module was loaded by. */
  package: SqliteDriverPackage;
  /** The better-sqlite3 version of that package. */
  version: string;
  /** Why the Node-API build is not in use, when Node >= 22 fell back to 12. */
  fallbackReason?: string;
}

/** The packages to try, best first, for a Node version string like `process.versions.node`. */
export function sqliteDriverCandidates(nodeVersion: string = process.versions.node): SqliteDriverPackage[] {
  const major = Number.parseInt(nodeVersion.split('.')[0] ?? '', 10);
  return major >= SQLITE_NAPI_MIN_NODE_MAJOR
    ? [SQLITE_NAPI_PACKAGE, SQLITE_LEGACY_PACKAGE]
    : [SQLITE_LEGACY_PACKAGE];
}

const requireFromHere = createRequire(import.meta.url);

interface LoadedDriver {
  Database: DatabaseConstructor;
  info: SqliteDriverInfo;
}

let loaded: LoadedDriver | undefined;

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Requires a package and opens (and closes) an in-memory database: both majors load their native addon lazily,
 * at the first `new Database`, so a missing or ABI-incompatible binary only shows there.
 */
function tryLoad(pkg: SqliteDriverPackage): DatabaseConstructor {
  const Database = requireFromHere(pkg) as DatabaseConstructor;
  new Database(':memory:').close();
  return Database;
}

function packageVersion(pkg: SqliteDriverPackage): string {
  try {
    return (requireFromHere(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function loadDriver(): LoadedDriver {
  if (loaded) return loaded;
  const candidates = sqliteDriverCandidates();
  const failures: string[] = [];
  for (const pkg of candidates) {
    try {
      const Database = tryLoad(pkg);
      const info: SqliteDriverInfo = { package: pkg, version: packageVersion(pkg) };
      if (failures.length > 0) {
        info.fallbackReason = failures.join('; ');
        createLogger('sqlite-driver').warn(
          {
            node: process.versions.node,
            driver: info.package,
            version: info.version,
            reason: info.fallbackReason,
          },
          `better-sqlite3 Node-API build (${SQLITE_NAPI_PACKAGE}) unavailable on Node ${process.versions.node}; ` +
            `falling back to ${pkg}@${info.version}, which may abort the process at GC on Node >= 24`,
        );
      }
      loaded = { Database, info };
      return loaded;
    } catch (error) {
      failures.push(`${pkg}: ${errorMessage(error)}`);
    }
  }
  throw new Error(
    `No usable better-sqlite3 build for Node ${process.versions.node} (tried ${candidates.join(', ')}): ${failures.join('; ')}`,
  );
}

/** The better-sqlite3 build this process uses (loading it on first call). */
export function sqliteDriver(): SqliteDriverInfo {
  return { ...loadDriver().info };
}

/**
 * Opens a better-sqlite3 database with the build that suits the running Node (see the top of this file).
 * Same arguments as `new Database(file, options)`; the caller configures and migrates it.
 */
export function openSqliteDatabase(file: string, options?: SqliteDatabaseOptions): SqliteDatabase {
  const { Database } = loadDriver();
  return new Database(file, options);
}
