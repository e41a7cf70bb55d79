export { type NotificationsConfig, notificationsEnvSchema } from './config.js';
export { CONSUMERS } from './events.js';
export { LIVE_EVENT, LIVE_PATH } from './live.js';
export {
  createNotificationsApp,
  type NotificationsApp,
  notificationsTypeDefs,
  openNotificationStore,
} from './notifications.app.js';
