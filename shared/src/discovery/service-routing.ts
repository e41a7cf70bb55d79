import type { Logger } from '../log.js';
import { createRoutingFollower, type RoutingFollower } from './routing-follower.js';
import { ServiceRouter, type ServiceRouterOptions } from './service-router.js';
import { staticSubgraphUrls } from './supergraph-file.js';

/** How a subgraph reaches the instances of other services for its direct calls. */
export interface ServiceRouting {
  router: ServiceRouter;
  /** Starts following the orchestrator's routing table (nothing without `follow`). */
  start(): void;
  stop(): Promise<void>;
}

/**
 * A router over the orchestrator's routing table (followed with long-polls when `follow`), falling back to the
 * supergraph's routing URLs (`SUBGRAPH_<NAME>_URL` overrides them) while the orchestrator has never answered, or
 * to `fallback` when given (tests). For the service-to-service calls of a subgraph: auth → users, ai → media.
 */
export function createServiceRouting(options: {
  orchestratorUrl: string;
  follow: boolean;
  logger?: Logger;
  fallback?: ServiceRouterOptions['fallback'];
}): ServiceRouting {
  const follower: RoutingFollower | undefined = options.follow
    ? createRoutingFollower({
        orchestratorUrl: options.orchestratorUrl,
        ...(options.logger ? { logger: options.logger } : {}),
      })
    : undefined;
  const router = new ServiceRouter({
    ...(follower ? { routing: follower } : {}),
    fallback: options.fallback ?? staticSubgraphUrls(),
  });
  return {
    router,
    start: () => follower?.start(),
    stop: async () => follower?.stop(),
  };
}
