import { createLogger, exitWithParent, loadConfigOrExit, onShutdownSignal, startOrExit } from '@aiva/shared';
import { createAuthApp } from './auth.app.js';
import { authEnvSchema } from './config.js';

// Under the orchestrator: a service still starting when it goes away just exits (see onShutdownSignal later).
exitWithParent(() => process.exit(1));

const config = loadConfigOrExit(authEnvSchema);
const logger = createLogger('auth', { level: config.LOG_LEVEL });
// A hard dependency missing at start is one clear line and exit 1 (soft ones are connected in the background).
const app = await startOrExit('auth', logger, async () => {
  const created = await createAuthApp({ config, logger });
  await created.listen();
  return created;
});
onShutdownSignal(() => app.close(), logger);
