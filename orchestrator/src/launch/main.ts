import { createLogger, onShutdownSignal } from '@aiva/shared';
import { composeForDev } from './dev-compose.js';
import { launchStack } from './launcher.js';

/**
 * `pnpm start`: all of AIVA in one process on the embedded defaults (or the adapters the environment names).
 * `pnpm dev` adds `--dev`: the supergraph is composed from the subgraphs' SDL files at each (re)start.
 */
const dev = process.argv.includes('--dev');
const logger = createLogger('aiva', { level: process.env.LOG_LEVEL ?? 'info' });
try {
  const supergraphSdl = dev ? composeForDev(logger) : undefined;
  const stack = await launchStack(supergraphSdl ? { supergraphSdl } : {});
  onShutdownSignal(() => stack.stop(), logger);
  process.stdout.write(`\nAIVA is up. GraphQL: ${stack.gatewayUrl}\n\n`);
} catch (error) {
  logger.fatal({ err: error }, 'AIVA failed to start');
  process.exit(1);
}
