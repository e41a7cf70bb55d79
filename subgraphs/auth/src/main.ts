import { createLogger, exitWithParent, loadConfigOrExit, onShutdownSignal } from '@aiva/shared';
import { createAuthApp } from './auth.app.js';
import { authEnvSchema } from './config.js';

// Under the orchestrator: a service still starting when it goes away just exits (see onShutdownSignal later).
exitWithParent(() => process.exit(1));

const config = loadConfigOrExit(authEnvSchema);
const logger = createLogger('auth', { level: config.LOG_LEVEL });
const app = await createAuthApp({ config, logger });
await app.listen();
onShutdownSignal(() => app.close(), logger);
