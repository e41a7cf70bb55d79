import { createHash } from 'node:crypto';
import { type Logger, REGISTRY_API, type RoutingSource } from '@aiva/shared';
import type { SupergraphSdlHook } from '@apollo/gateway';

export interface SupergraphSourceOptions {
  /** The routing table (carries the hash of the supergraph to serve). */
  routing?: RoutingSource & { ready(timeoutMs: number): Promise<boolean> };
  orchestratorUrl: string;
  /** The supergraph served when the orchestrator has none (the committed file, or one given). */
  fallbackSdl: string;
  /** How long to wait at start for the orchestrator's first table before serving the fallback (ms). */
  startWaitMs?: number;
  logger?: Logger;
  /** Called with every supergraph the gateway starts serving. */
  onServe?: (sdl: string) => void;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function fetchSupergraph(orchestratorUrl: string): Promise<string> {
  const response = await fetch(new URL(REGISTRY_API.supergraph, orchestratorUrl), {
    signal: AbortSignal.timeout(5_000),
  });
  if (!response.ok) throw new Error(`supergraph: HTTP ${response.status}`);
  return response.text();
}

/**
 * The gateway's supergraph, following the orchestrator: at start the orchestrator's current supergraph (or the
 * fallback when it cannot be reached), then every new one the routing table announces, swapped in without a
 * restart (`update`). A supergraph that cannot be fetched or loaded leaves the one being served in place; the
 * orchestrator never announces one that failed to compose.
 */
export function orchestratorSupergraph(options: SupergraphSourceOptions): SupergraphSdlHook {
  return async ({ update }) => {
    const { routing, logger } = options;
    let served = { sdl: options.fallbackSdl, hash: sha256(options.fallbackSdl) };
    const wanted = () => routing?.current()?.supergraph?.hash;
    if (routing && (await routing.ready(options.startWaitMs ?? 1_500))) {
      const hash = wanted();
      if (hash && hash !== served.hash) {
        try {
          served = { sdl: await fetchSupergraph(options.orchestratorUrl), hash };
        } catch (error) {
          logger?.warn(
            { err: (error as Error).message },
            'cannot fetch the orchestrator supergraph at start',
          );
        }
      }
    }
    options.onServe?.(served.sdl);

    // Swaps run one after the other; a table that arrives meanwhile is looked at when the current swap ends.
    let swapping: Promise<void> = Promise.resolve();
    const swap = async () => {
      const hash = wanted();
      if (!hash || hash === served.hash) return;
      try {
        const sdl = await fetchSupergraph(options.orchestratorUrl);
        update(sdl);
        served = { sdl, hash };
        options.onServe?.(sdl);
        logger?.info({ hash }, 'serving a new supergraph');
      } catch (error) {
        logger?.error(
          { err: (error as Error).message, hash },
          'new supergraph not applied: keeping the current one',
        );
      }
    };
    const unsubscribe = routing?.onChange(() => {
      swapping = swapping.then(swap);
    });
    return {
      supergraphSdl: served.sdl,
      cleanup: async () => {
        unsubscribe?.();
        await swapping;
      },
    };
  };
}
