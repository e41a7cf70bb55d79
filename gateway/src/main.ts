import { createLogger, exitWithParent, loadConfigOrExit, onShutdownSignal } from '@aiva/shared';
import { gatewayEnvSchema } from './config.js';
import { createGatewayApp } from './gateway.app.js';

// Under the orchestrator: a service still starting when it goes away just exits (see onShutdownSignal later).
exitWithParent(() => process.exit(1));

const config = loadConfigOrExit(gatewayEnvSchema);
const logger = createLogger('gateway', { level: config.LOG_LEVEL });
const app = await createGatewayApp({ config, logger });
await app.listen();
onShutdownSignal(() => app.close(), logger);
