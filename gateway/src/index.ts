export { type GatewayConfig, gatewayEnvSchema, subgraphUrlOverrides } from './config.js';
export { createGatewayApp, type GatewayApp, type GatewayAppOptions } from './gateway.app.js';
export { DEFAULT_SUPERGRAPH_PATH, readSupergraph, subgraphsOf } from './supergraph.js';
