export { DEFAULT_SUPERGRAPH_PATH, readSupergraph, subgraphsOf, subgraphUrlOverrides } from '@aiva/shared';
export { type GatewayConfig, gatewayEnvSchema } from './config.js';
export { createGatewayApp, type GatewayApp, type GatewayAppOptions } from './gateway.app.js';
export { matchRoute } from './service-routes.js';
