// The operator's tool for users' outbox quarantine (see @aiva/shared outbox-admin):
//   pnpm --filter @aiva/users outbox:quarantine list | replay <id...> | replay --all | discard <id...>
// With the service's environment (DATA_DIR / USERS_DB_FILE, or MONGODB_URL). Safe while users runs: its relay
// publishes replayed rows on its next poll.
import { loadConfigOrExit, outboxQuarantineMain } from '@aiva/shared';
import { usersEnvSchema } from './config.js';
import { openUserStore } from './users.app.js';

// `pnpm --filter` runs scripts in the package's directory: relative paths (DATA_DIR=.data) are meant from where
// the operator typed the command, as for the services started from the repository root.
if (process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);
const config = loadConfigOrExit(usersEnvSchema);
await outboxQuarantineMain(() => openUserStore(config));
