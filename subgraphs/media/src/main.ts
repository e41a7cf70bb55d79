// First: sizes libuv's thread pool before it starts (see threadpool.ts).
import './threadpool.js';
import { createLogger, exitWithParent, loadConfigOrExit, onShutdownSignal, startOrExit } from '@aiva/shared';
import { mediaEnvSchema } from './config.js';
import { createMediaApp } from './media.app.js';

// Under the orchestrator: a service still starting when it goes away just exits (see onShutdownSignal later).
exitWithParent(() => process.exit(1));

const config = loadConfigOrExit(mediaEnvSchema);
const logger = createLogger('media', { level: config.LOG_LEVEL });
const app = await startOrExit('media', logger, async () => {
  const created = await createMediaApp({ config, logger });
  await created.listen();
  return created;
});
onShutdownSignal(() => app.close(), logger);
