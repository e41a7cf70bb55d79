export * from './config.js';
export * from './guards.js';
export * from './service-credentials.js';
export * from './service-token-source.js';
export * from './service-verifier.js';
export * from './session-revocations.js';
export * from './verifier.js';
export * from './viewer.js';
