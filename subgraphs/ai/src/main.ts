import { createLogger, exitWithParent, loadConfigOrExit, onShutdownSignal, startOrExit } from '@aiva/shared';
import { createAiApp } from './ai.app.js';
import { aiEnvSchema } from './config.js';

// Under the orchestrator: a service still starting when it goes away just exits (see onShutdownSignal later).
exitWithParent(() => process.exit(1));

const config = loadConfigOrExit(aiEnvSchema);
const logger = createLogger('ai', { level: config.LOG_LEVEL });
const app = await startOrExit('ai', logger, async () => {
  const created = await createAiApp({ config, logger });
  await created.listen();
  return created;
});
onShutdownSignal(() => app.close(), logger);
