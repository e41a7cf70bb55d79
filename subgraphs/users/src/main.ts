import { createLogger, exitWithParent, loadConfigOrExit, onShutdownSignal, startOrExit } from '@aiva/shared';
import { usersEnvSchema } from './config.js';
import { createUsersApp } from './users.app.js';

// Under the orchestrator: a service still starting when it goes away just exits (see onShutdownSignal later).
exitWithParent(() => process.exit(1));

const config = loadConfigOrExit(usersEnvSchema);
const logger = createLogger('users', { level: config.LOG_LEVEL });
// A hard dependency missing at start is one clear line and exit 1 (soft ones are connected in the background).
const app = await startOrExit('users', logger, async () => {
  const created = await createUsersApp({ config, logger });
  await created.listen();
  return created;
});
onShutdownSignal(() => app.close(), logger);
