export { type UsersConfig, usersEnvSchema } from './config.js';
export { connectMongoUserStore } from './store/mongo.js';
export { openSqliteUserStore } from './store/sqlite.js';
export type { UserRecord, UserStore } from './store/user.store.js';
export {
  createUsersApp,
  openUserStore,
  type UsersApp,
  type UsersAppOptions,
  usersTypeDefs,
} from './users.app.js';
