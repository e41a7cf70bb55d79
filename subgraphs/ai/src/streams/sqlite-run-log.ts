import { EventEmitter } from 'node:events';
import { openMigratedSqlite, type SqliteDatabase, type SqliteRow } from '@aiva/shared';
import type { RunEvent, RunLog } from './run-log.js';

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE ai_runs (
    id         TEXT PRIMARY KEY NOT NULL,
    owner_id   TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX ai_runs_expiry ON ai_runs (expires_at);
  CREATE TABLE ai_run_events (
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    type   TEXT NOT NULL,
    data   TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
  ) STRICT, WITHOUT ROWID;
  `,
];

/** How often a reader looks for events appended by another process (same-process appends wake it at once). */
const POLL_MS = 50;

/**
 * The run log in a SQLite file the instances on one machine share (WAL): appends are rows, readers in this
 * process are woken by the append, readers in other processes poll. Expired runs are purged on `create`.
 */
export function openSqliteRunLog(options: { file: string; now?: () => number }): RunLog {
  const db: SqliteDatabase = openMigratedSqlite(options.file, {
    migrations: MIGRATIONS,
    label: 'ai runs database',
  });
  const now = options.now ?? Date.now;
  const appended = new EventEmitter().setMaxListeners(0);
  const stmt = {
    create: db.prepare<[string, string, number]>(
      'INSERT INTO ai_runs (id, owner_id, expires_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING',
    ),
    owner: db
      .prepare<[string, number], string>('SELECT owner_id FROM ai_runs WHERE id = ? AND expires_at > ?')
      .pluck(),
    append: db.prepare<[string, number, string, string]>(
      'INSERT INTO ai_run_events (run_id, seq, type, data) VALUES (?, ?, ?, ?)',
    ),
    after: db.prepare<[string, number, number], SqliteRow>(
      'SELECT seq, type, data FROM ai_run_events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?',
    ),
    expired: db.prepare<[number], SqliteRow>('DELETE FROM ai_runs WHERE expires_at <= ? RETURNING id'),
    dropEvents: db.prepare<[string]>('DELETE FROM ai_run_events WHERE run_id = ?'),
  };
  const purge = db.transaction((at: number) => {
    for (const row of stmt.expired.all(at)) stmt.dropEvents.run(row.id as string);
  });

  return {
    kind: 'sqlite',
    async create(runId, ownerId, ttlMs) {
      purge(now());
      stmt.create.run(runId, ownerId, now() + ttlMs);
    },
    async ownerOf(runId) {
      return stmt.owner.get(runId, now()) ?? null;
    },
    async append(runId, event) {
      stmt.append.run(runId, event.seq, event.type, JSON.stringify(event.data ?? null));
      appended.emit(runId);
    },
    async readAfter(runId, afterSeq, limit) {
      return stmt.after.all(runId, afterSeq, limit).map(
        (row): RunEvent => ({
          seq: row.seq as number,
          type: row.type as RunEvent['type'],
          data: JSON.parse(row.data as string),
        }),
      );
    },
    waitAfter(runId, afterSeq, timeoutMs, signal) {
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          clearInterval(poll);
          appended.off(runId, done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        // Another process's append: noticed by looking.
        const poll = setInterval(() => {
          if (stmt.after.all(runId, afterSeq, 1).length > 0) done();
        }, POLL_MS);
        appended.once(runId, done);
        signal?.addEventListener('abort', done, { once: true });
      });
    },
    async ping() {
      db.prepare('SELECT 1').get();
    },
    async close() {
      appended.removeAllListeners();
      db.close();
    },
  };
}
