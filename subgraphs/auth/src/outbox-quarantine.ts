// The operator's tool for auth's outbox quarantine (see @aiva/shared outbox-admin):
//   pnpm --filter @aiva/auth outbox:quarantine list | replay <id...> | replay --all | discard <id...>
// With the service's environment (DATA_DIR / AUTH_DB_FILE, or MONGODB_URL). Safe while auth runs: its relay
// publishes replayed rows on its next poll.
import { join } from 'node:path';
import { loadConfigOrExit, outboxQuarantineMain } from '@aiva/shared';
import { openAccountStore } from './auth.app.js';
import { authEnvSchema } from './config.js';

// `pnpm --filter` runs scripts in the package's directory: relative paths (DATA_DIR=.data) are meant from where
// the operator typed the command, as for the services started from the repository root.
if (process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);
const config = loadConfigOrExit(authEnvSchema);
await outboxQuarantineMain(() =>
  openAccountStore(config, config.AUTH_DB_FILE ?? join(config.DATA_DIR, 'auth.sqlite')),
);
