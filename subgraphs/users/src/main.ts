import { createLogger, exitWithParent, loadConfigOrExit, onShutdownSignal } from '@aiva/shared';
import { usersEnvSchema } from './config.js';
import { createUsersApp } from './users.app.js';

// Under the orchestrator: a service still starting when it goes away just exits (see onShutdownSignal later).
exitWithParent(() => process.exit(1));

const config = loadConfigOrExit(usersEnvSchema);
const logger = createLogger('users', { level: config.LOG_LEVEL });
const app = await createUsersApp({ config, logger });
await app.listen();
onShutdownSignal(() => app.close(), logger);
