import { join } from 'node:path';
import {
  type AccessTokenVerifier,
  createDependencyMonitor,
  createLogger,
  createServiceEvents,
  createSubgraphServer,
  discoveryFromEnv,
  introspectionOf,
  loadSealingKeys,
  loadTypeDefs,
  mongoTimeoutsOf,
  operationLimitsOf,
  type SessionRevocations,
  type SubgraphApp,
  type SubgraphAppOptions,
  sealingKeysFile,
  serviceEventsConfigOf,
  subgraphTokenVerifier,
} from '@aiva/shared';
import {
  createEmailChannel,
  createPushChannel,
  createSmsChannel,
  deliveryFailureKind,
  loadOrCreateVapidKeys,
} from './channels/index.js';
import type { NotificationsConfig } from './config.js';
import { DeliveryDispatcher } from './delivery/dispatcher.js';
import { createSenders } from './delivery/senders.js';
import { subscribeConsumers } from './events.js';
import { createLiveChannel, LIVE_PATH, type LiveChannel, redisLiveAdapter } from './live.js';
import { NotificationService, toLive } from './notification.service.js';
import { PreferenceService } from './preference.service.js';
import { createResolvers, type NotificationsContext } from './resolvers.js';
import type { NotificationStore } from './store/notification.store.js';
import { openSqliteNotificationStore } from './store/sqlite.js';

/** The subgraph's SDL, read from the file supergraph.yaml composes. */
export const notificationsTypeDefs = loadTypeDefs(new URL('../schema.graphql', import.meta.url));

/** The source of the events notifications publishes (the requests of `sendNotification`). */
export const EVENT_SOURCE = 'notifications';

export interface NotificationsApp extends SubgraphApp {
  store: NotificationStore;
  dispatcher: DeliveryDispatcher;
  live: LiveChannel;
}

export interface NotificationsAppOptions extends SubgraphAppOptions<NotificationsConfig> {
  /** An existing store (tests); otherwise MongoDB when MONGODB_URL is set, else SQLite under DATA_DIR. */
  store?: NotificationStore;
  verifier?: AccessTokenVerifier;
  revocations?: SessionRevocations;
}

export async function openNotificationStore(config: NotificationsConfig): Promise<NotificationStore> {
  if (config.MONGODB_URL) {
    const { connectMongoNotificationStore } = await import('./store/mongo.js');
    return connectMongoNotificationStore({ url: config.MONGODB_URL, ...mongoTimeoutsOf(config) });
  }
  return openSqliteNotificationStore({
    file: config.NOTIFICATIONS_DB_FILE ?? join(config.DATA_DIR, 'notifications.sqlite'),
  });
}

/** config → adapters → subgraph server. Nothing listens until `listen()`. */
export async function createNotificationsApp(options: NotificationsAppOptions): Promise<NotificationsApp> {
  const { config } = options;
  const logger = options.logger ?? createLogger('notifications', { level: config.LOG_LEVEL });
  const store = options.store ?? (await openNotificationStore(config));
  const dependencies = createDependencyMonitor(logger);
  const tokens = await subgraphTokenVerifier({
    config,
    ...(options.verifier ? { given: options.verifier } : {}),
    ...(options.revocations ? { revocations: options.revocations } : {}),
    dependencies,
    logger,
  });
  const sealingKeys = await loadSealingKeys({
    keys: config.EVENT_SEALING_KEYS,
    file: sealingKeysFile(config),
    logger,
  });
  const email = createEmailChannel({
    smtpUrl: config.SMTP_URL,
    from: config.MAIL_FROM,
    mailDir: config.MAIL_DIR ?? join(config.DATA_DIR, 'mail'),
    logger,
    timeoutMs: config.DELIVERY_TIMEOUT_MS,
  });
  const twilio =
    config.TWILIO_ACCOUNT_SID && config.TWILIO_AUTH_TOKEN && config.TWILIO_FROM
      ? {
          accountSid: config.TWILIO_ACCOUNT_SID,
          authToken: config.TWILIO_AUTH_TOKEN,
          from: config.TWILIO_FROM,
          ...(config.TWILIO_BASE_URL ? { baseUrl: config.TWILIO_BASE_URL } : {}),
        }
      : undefined;
  const sms = createSmsChannel({
    twilio,
    logFile: config.SMS_LOG_FILE ?? join(config.DATA_DIR, 'sms.log'),
    logger,
    timeoutMs: config.DELIVERY_TIMEOUT_MS,
  });
  const vapid = await loadOrCreateVapidKeys(
    config.VAPID_KEYS_FILE ?? join(config.DATA_DIR, 'vapid-keys.json'),
    config.VAPID_SUBJECT,
    logger,
  );
  const push = createPushChannel({
    vapid,
    subject: config.VAPID_SUBJECT,
    timeoutMs: config.DELIVERY_TIMEOUT_MS,
  });
  logger.info({ email: email.target, sms: sms.kind }, 'notification channels ready');

  const dispatcher = new DeliveryDispatcher({
    store,
    send: createSenders({
      email,
      push,
      sms,
      store,
      sealingKeys,
      appName: config.APP_NAME,
      appUrl: config.APP_URL,
    }),
    classify: deliveryFailureKind,
    onGone: (delivery) => store.forgetPushEndpoint(delivery.target),
    maxAttempts: config.DELIVERY_MAX_ATTEMPTS,
    retryBaseMs: config.DELIVERY_RETRY_BASE_MS,
    concurrency: config.DELIVERY_CONCURRENCY,
    leaseMs: config.DELIVERY_TIMEOUT_MS * 2 + 5_000,
    retentionMs: config.DELIVERY_RETENTION_DAYS * 24 * 60 * 60 * 1000,
    logger,
  });
  const events = await createServiceEvents({
    store,
    bus: options.bus,
    source: EVENT_SOURCE,
    logger,
    ...serviceEventsConfigOf(config),
  });
  // With several instances, a push must reach the person's sockets wherever they are connected.
  const liveAdapter = config.REDIS_URL
    ? await redisLiveAdapter(config.REDIS_URL, logger, config.REDIS_CONNECT_TIMEOUT_MS)
    : undefined;
  // The live channel needs the HTTP server: made after it, used by the service through this late binding.
  let live: LiveChannel | undefined;
  const notifications = new NotificationService({
    store,
    appName: config.APP_NAME,
    onStored: (notification) => live?.push(notification.userId, toLive(notification)),
    onQueued: () => dispatcher.notify(),
    onRequested: () => events.relay.notify(),
  });
  const preferences = new PreferenceService(store);
  const subscriptions = await subscribeConsumers(events.bus, notifications, logger);

  const server = await createSubgraphServer<NotificationsContext>({
    name: 'notifications',
    logger,
    operationLimits: operationLimitsOf(config),
    introspection: introspectionOf(config),
    typeDefs: notificationsTypeDefs,
    resolvers: createResolvers(notifications, preferences, push.publicKey),
    auth: tokens.verifier,
    readiness: [
      { name: 'store', check: () => store.ping() },
      { name: 'events', check: () => events.bus.ping(), soft: true },
      ...tokens.readiness,
    ],
    dependencies,
    ...((options.discovery ?? true)
      ? { discovery: { ...discoveryFromEnv(config), routes: [{ prefix: LIVE_PATH, websocket: true }] } }
      : {}),
    onClose: [
      async () => {
        for (const subscription of subscriptions) await subscription.stop();
      },
      () => dispatcher.stop(),
      async () => live?.close(),
      async () => liveAdapter?.close(),
      ...events.closers,
      () => email.close(),
      () => tokens.close(),
      () => store.close(),
    ],
  });
  live = createLiveChannel({
    httpServer: server.app.server,
    verifier: tokens.verifier,
    logger,
    ...(liveAdapter ? { adapter: liveAdapter.adapter } : {}),
    catchUp: async (userId, since) =>
      (await store.listNotifications(userId, { first: 50, unreadOnly: false })).notifications
        .filter((notification) => notification.createdAt >= since)
        .reverse()
        .map(toLive),
  });
  events.metrics.register(server.metrics.registry, server.dependencies);
  dispatcher.register(server.metrics.registry);
  events.relay.start();
  dispatcher.start();
  const liveChannel = live;
  return {
    server,
    store,
    dispatcher,
    live: liveChannel,
    listen: () => server.listen({ port: config.NOTIFICATIONS_PORT, host: config.HOST }),
    close: () => server.close(),
  };
}
