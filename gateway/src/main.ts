import { createLogger, exitWithParent, loadConfigOrExit, onShutdownSignal, startOrExit } from '@aiva/shared';
import { gatewayEnvSchema } from './config.js';
import { createGatewayApp } from './gateway.app.js';

// Under the orchestrator: a service still starting when it goes away just exits (see onShutdownSignal later).
exitWithParent(() => process.exit(1));

const config = loadConfigOrExit(gatewayEnvSchema);
const logger = createLogger('gateway', { level: config.LOG_LEVEL });
// A hard dependency missing at start is one clear line and exit 1 (soft ones are connected in the background).
const app = await startOrExit('gateway', logger, async () => {
  const created = await createGatewayApp({ config, logger });
  await created.listen();
  return created;
});
onShutdownSignal(() => app.close(), logger);
