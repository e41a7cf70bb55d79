import { createLogger, loadConfigOrExit, onShutdownSignal } from '@aiva/shared';
import { gatewayEnvSchema } from './config.js';
import { createGatewayApp } from './gateway.app.js';

const config = loadConfigOrExit(gatewayEnvSchema);
const logger = createLogger('gateway', { level: config.LOG_LEVEL });
const app = await createGatewayApp({ config, logger });
await app.listen();
onShutdownSignal(() => app.close(), logger);
