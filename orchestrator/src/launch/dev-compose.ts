import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '@aiva/shared';
import { composeFromConfig } from '../schema/compose.js';
import { loadSupergraphConfig } from '../schema/supergraph-config.js';

const SUPERGRAPH_YAML = join(dirname(fileURLToPath(import.meta.url)), '../../../supergraph.yaml');

/**
 * Composes supergraph.yaml's subgraphs as they are on disk, so an SDL edit is served on the next reload.
 * A composition failure is logged and the committed supergraph (the last good one) is served instead.
 */
export function composeForDev(logger: Logger, configFile: string = SUPERGRAPH_YAML): string | undefined {
  try {
    const result = composeFromConfig(loadSupergraphConfig(configFile));
    if (result.ok) return result.supergraphSdl;
    logger.error(
      { errors: result.errors },
      'supergraph does not compose: serving the committed supergraph.graphql',
    );
  } catch (error) {
    logger.error({ err: error }, 'cannot compose the supergraph: serving the committed supergraph.graphql');
  }
  return undefined;
}
