export { type MediaConfig, mediaEnvSchema } from './config.js';
export { CONSUMERS } from './events.js';
export { FILES_PATH } from './http/files.js';
export { UPLOADS_PATH } from './http/uploads.js';
export { createMediaApp, type MediaApp, mediaTypeDefs, openMediaStore } from './media.app.js';
export { UrlSigner } from './signed-urls.js';
