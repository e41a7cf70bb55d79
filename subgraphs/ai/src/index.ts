export { type AiApp, aiTypeDefs, createAiApp, openAiStore } from './ai.app.js';
export { type AiConfig, aiEnvSchema } from './config.js';
export { CONSUMERS } from './events.js';
export { STREAMS_PATH } from './streams/sse.js';
