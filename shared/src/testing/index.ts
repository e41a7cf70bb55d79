// Test kit for AIVA packages (`@aiva/shared/testing`): adapter contract suites and infrastructure gates.
// Imports vitest, so it must never be imported from the runtime entry point (src/index.ts).
export * from './bus.contract.js';
export * from './cache.contract.js';
export * from './graphql-client.js';
export * from './infra.js';
export * from './logs.js';
export * from './mongo.js';
export * from './racers.js';
export * from './tokens.js';
