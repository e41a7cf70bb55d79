import { createLogger, exitWithParent, loadConfigOrExit, onShutdownSignal, startOrExit } from '@aiva/shared';
import { notificationsEnvSchema } from './config.js';
import { createNotificationsApp } from './notifications.app.js';

// Under the orchestrator: a service still starting when it goes away just exits (see onShutdownSignal later).
exitWithParent(() => process.exit(1));

const config = loadConfigOrExit(notificationsEnvSchema);
const logger = createLogger('notifications', { level: config.LOG_LEVEL });
const app = await startOrExit('notifications', logger, async () => {
  const created = await createNotificationsApp({ config, logger });
  await created.listen();
  return created;
});
onShutdownSignal(() => app.close(), logger);
