import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteRunLog } from '../../src/streams/sqlite-run-log.js';
import { runLogContract } from './run-log.contract.js';

runLogContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aiva-runs-'));
  const file = join(dir, 'runs.sqlite');
  return {
    log: openSqliteRunLog({ file }),
    // Another process's connection to the same file: it learns of appends by polling.
    peer: async () => openSqliteRunLog({ file }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
