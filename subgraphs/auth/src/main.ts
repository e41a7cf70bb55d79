import { createLogger, loadConfigOrExit, onShutdownSignal } from '@aiva/shared';
import { createAuthApp } from './auth.app.js';
import { authEnvSchema } from './config.js';

const config = loadConfigOrExit(authEnvSchema);
const logger = createLogger('auth', { level: config.LOG_LEVEL });
const app = await createAuthApp({ config, logger });
await app.listen();
onShutdownSignal(() => app.close(), logger);
