import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteAiStore } from '../../src/store/sqlite.js';
import { aiStoreContract } from './ai.store.contract.js';

aiStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aiva-ai-store-'));
  return {
    store: openSqliteAiStore({ file: join(dir, 'ai.sqlite') }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
