import { authEnvSchema, createAuthApp } from '@aiva/auth';
import { createGatewayApp, type GatewayApp, gatewayEnvSchema, subgraphUrlOverrides } from '@aiva/gateway';
import { type EventBus, type Logger, loadConfig } from '@aiva/shared';
import { createUsersApp, usersEnvSchema } from '@aiva/users';

/** What the launcher needs of a subgraph: make it (not yet listening) from the environment. */
export interface LaunchableService {
  name: string;
  create(deps: {
    env: NodeJS.ProcessEnv;
    logger: Logger;
    bus?: EventBus;
    /** The gateway's GraphQL URL, known once it listens (for service-to-service calls through the supergraph). */
    gatewayUrl: () => string;
  }): Promise<{
    listen(): Promise<string>;
    close(): Promise<void>;
  }>;
}

/**
 * Every subgraph `pnpm start` runs, in start order. Adding a subgraph: add its package to this list (and to
 * orchestrator/package.json), and to supergraph.yaml.
 */
export const SUBGRAPHS: LaunchableService[] = [
  // First: the others verify tokens against its JWKS.
  {
    name: 'auth',
    create: ({ env, logger, bus, gatewayUrl }) =>
      createAuthApp({
        config: loadConfig(authEnvSchema, env),
        logger,
        supergraphUrl: gatewayUrl,
        ...(bus ? { bus } : {}),
      }),
  },
  {
    name: 'users',
    create: ({ env, logger, bus }) =>
      createUsersApp({ config: loadConfig(usersEnvSchema, env), logger, ...(bus ? { bus } : {}) }),
  },
];

export function createGateway(deps: {
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Where the subgraphs started in this process listen (they win over the supergraph's routing URLs). */
  subgraphUrls: Record<string, string>;
  supergraphSdl?: string;
}): Promise<GatewayApp> {
  return createGatewayApp({
    config: loadConfig(gatewayEnvSchema, deps.env),
    logger: deps.logger,
    subgraphUrls: { ...subgraphUrlOverrides(deps.env), ...deps.subgraphUrls },
    ...(deps.supergraphSdl ? { supergraphSdl: deps.supergraphSdl } : {}),
  });
}
