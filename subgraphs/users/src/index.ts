export { type UsersConfig, usersEnvSchema } from './config.js';
export { createUsersApp, openUserStore, type UsersApp, type UsersAppOptions, usersTypeDefs } from './users.app.js';
export type { UserRecord, UserStore } from './store/user.store.js';
