export { type AuthApp, type AuthAppOptions, authTypeDefs, createAuthApp, JWKS_PATH } from './auth.app.js';
export { type AuthConfig, authEnvSchema } from './config.js';
export { answerTokenRequest, registerOAuthTokenRoute, SERVICE_TOKEN_TTL_SECONDS } from './oauth-token.js';
