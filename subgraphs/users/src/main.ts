import { createLogger, loadConfigOrExit, onShutdownSignal } from '@aiva/shared';
import { usersEnvSchema } from './config.js';
import { createUsersApp } from './users.app.js';

const config = loadConfigOrExit(usersEnvSchema);
const logger = createLogger('users', { level: config.LOG_LEVEL });
const app = await createUsersApp({ config, logger });
await app.listen();
onShutdownSignal(() => app.close(), logger);
