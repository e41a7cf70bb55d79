import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '@aiva/shared';
import { composeSupergraph } from '../schema/compose.js';
import { loadSupergraphConfig } from '../schema/supergraph-config.js';

const SUPERGRAPH_YAML = join(dirname(fileURLToPath(import.meta.url)), '../../../supergraph.yaml');

/**
 * Composes supergraph.yaml's subgraphs as they are on disk, so an SDL edit is served on the next reload.
 * A composition failure is logged and the committed supergraph (the last good one) is served instead.
 */
export async function composeForDev(logger: Logger): Promise<string | undefined> {
  try {
    const config = await loadSupergraphConfig(SUPERGRAPH_YAML);
    const result = composeSupergraph(config.subgraphs.map((s) => ({ name: s.name, url: s.routingUrl, sdl: s.sdl })));
    if (result.ok) return result.supergraphSdl;
    logger.error({ errors: result.errors }, 'supergraph does not compose: serving the committed supergraph.graphql');
  } catch (error) {
    logger.error({ err: error }, 'cannot compose the supergraph: serving the committed supergraph.graphql');
  }
  return undefined;
}
