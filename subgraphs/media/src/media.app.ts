import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
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
  PRIVATE_DIR_MODE,
  type SessionRevocations,
  type SubgraphApp,
  type SubgraphAppOptions,
  serviceEventsConfigOf,
  subgraphTokenVerifier,
} from '@aiva/shared';
import type { MediaConfig } from './config.js';
import { subscribeConsumers } from './events.js';
import { FILES_PATH, registerFileRoutes, TEXT } from './http/files.js';
import { createTusServer, registerUploadRoutes, UPLOADS_PATH } from './http/uploads.js';
import { EVENT_SOURCE, MediaService, type UploadLimits } from './media.service.js';
import { configureSharp, kindOfMimeType, type ProcessLimits } from './processing/index.js';
import { ProcessingWorker } from './processing-worker.js';
import { createResolvers, type MediaContext } from './resolvers.js';
import { UrlSigner } from './signed-urls.js';
import {
  createStorage,
  createTusDatastore,
  type FileStorage,
  type StorageConfig,
  type TusDatastore,
} from './storage/index.js';
import type { MediaStore } from './store/media.store.js';
import { openSqliteMediaStore } from './store/sqlite.js';

/** The subgraph's SDL, read from the file supergraph.yaml composes. */
export const mediaTypeDefs = loadTypeDefs(new URL('../schema.graphql', import.meta.url));

export interface MediaApp extends SubgraphApp {
  store: MediaStore;
  storage: FileStorage;
  worker: ProcessingWorker;
  signer: UrlSigner;
}

export interface MediaAppOptions extends SubgraphAppOptions<MediaConfig> {
  /** An existing store (tests); otherwise MongoDB when MONGODB_URL is set, else SQLite under DATA_DIR. */
  store?: MediaStore;
  verifier?: AccessTokenVerifier;
  revocations?: SessionRevocations;
}

export async function openMediaStore(config: MediaConfig): Promise<MediaStore> {
  if (config.MONGODB_URL) {
    const { connectMongoMediaStore } = await import('./store/mongo.js');
    return connectMongoMediaStore({ url: config.MONGODB_URL, ...mongoTimeoutsOf(config) });
  }
  return openSqliteMediaStore({ file: config.MEDIA_DB_FILE ?? join(config.DATA_DIR, 'media.sqlite') });
}

/** The media folder of the embedded storage (files, uploads in progress, work directories). */
function mediaDirOf(config: MediaConfig): string {
  return resolve(config.MEDIA_DIR ?? join(config.DATA_DIR, 'media'));
}

/** Files in S3 when S3_BUCKET is set, else in a local folder. */
export function storageConfigOf(config: MediaConfig): StorageConfig {
  if (!config.S3_BUCKET) return { kind: 'local', root: join(mediaDirOf(config), 'files') };
  return {
    kind: 's3',
    bucket: config.S3_BUCKET,
    region: config.S3_REGION,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    ...(config.S3_ENDPOINT ? { endpoint: config.S3_ENDPOINT } : {}),
    ...(config.S3_ACCESS_KEY_ID ? { accessKeyId: config.S3_ACCESS_KEY_ID } : {}),
    ...(config.S3_SECRET_ACCESS_KEY ? { secretAccessKey: config.S3_SECRET_ACCESS_KEY } : {}),
    ...(config.S3_PREFIX ? { prefix: config.S3_PREFIX } : {}),
  };
}

export function uploadLimitsOf(config: MediaConfig): UploadLimits {
  return {
    maxBytes: {
      IMAGE: config.MEDIA_MAX_IMAGE_BYTES,
      VIDEO: config.MEDIA_MAX_VIDEO_BYTES,
      AUDIO: config.MEDIA_MAX_AUDIO_BYTES,
      DOCUMENT: config.MEDIA_MAX_DOCUMENT_BYTES,
    },
    quotaBytes: config.MEDIA_QUOTA_BYTES,
    urlTtlSeconds: config.MEDIA_UPLOAD_URL_TTL_SECONDS,
  };
}

export function processLimitsOf(config: MediaConfig): ProcessLimits {
  return {
    maxPixels: config.MEDIA_MAX_PIXELS,
    maxDurationSeconds: config.MEDIA_MAX_DURATION_SECONDS,
    maxPages: config.MEDIA_MAX_PDF_PAGES,
    maxTextChars: config.MEDIA_MAX_TEXT_CHARS,
    timeoutMs: config.MEDIA_PROCESSING_TIMEOUT_MS,
  };
}

/** config → adapters → subgraph server. Nothing listens until `listen()`. */
export async function createMediaApp(options: MediaAppOptions): Promise<MediaApp> {
  const { config } = options;
  const logger = options.logger ?? createLogger('media', { level: config.LOG_LEVEL });
  const mediaDir = mediaDirOf(config);
  const workRoot = join(mediaDir, 'work');
  mkdirSync(workRoot, { recursive: true, mode: PRIVATE_DIR_MODE });
  const store = options.store ?? (await openMediaStore(config));
  const storageConfig = storageConfigOf(config);
  const storage = createStorage(storageConfig);
  const datastore: TusDatastore = createTusDatastore(storageConfig, {
    stagingDir: join(mediaDir, 'uploads'),
    storage,
  });
  const dependencies = createDependencyMonitor(logger);
  const tokens = await subgraphTokenVerifier({
    config,
    ...(options.verifier ? { given: options.verifier } : {}),
    ...(options.revocations ? { revocations: options.revocations } : {}),
    dependencies,
    logger,
  });
  const urlKeys = await loadSealingKeys({
    keys: config.MEDIA_URL_KEYS,
    file: join(config.DATA_DIR, 'media-url-keys.json'),
    logger,
  });
  const signer = new UrlSigner(urlKeys, config.MEDIA_PUBLIC_URL);
  configureSharp({ concurrency: Math.max(1, Math.floor(4 / config.MEDIA_PROCESSING_CONCURRENCY)) });
  const events = await createServiceEvents({
    store,
    bus: options.bus,
    source: EVENT_SOURCE,
    logger,
    ...serviceEventsConfigOf(config),
  });
  const limits = uploadLimitsOf(config);
  // The worker is made after the service, which tells it when something was queued: a late binding.
  let worker: ProcessingWorker | undefined;
  const service = new MediaService({
    store,
    storage,
    staging: {
      create: async (id, size) => {
        const { Upload } = await import('@tus/server');
        await datastore.create(new Upload({ id, size, offset: 0, metadata: {} }));
      },
      remove: async (id) => {
        await datastore.remove(id).catch(() => {});
      },
    },
    limits,
    kindOf: kindOfMimeType,
    onEvent: () => events.relay.notify(),
    onQueued: () => worker?.notify(),
    logger,
  });
  let lastExpiry = 0;
  worker = new ProcessingWorker({
    store,
    storage,
    limits: processLimitsOf(config),
    concurrency: config.MEDIA_PROCESSING_CONCURRENCY,
    leaseMs: config.MEDIA_PROCESSING_LEASE_MS,
    maxAttempts: config.MEDIA_PROCESSING_MAX_ATTEMPTS,
    workRoot,
    onEvent: () => events.relay.notify(),
    // Valid as long as NATS keeps the event (a week): a consumer replaying it can still fetch the text.
    textUrlOf: (mediaId) => signer.downloadUrl(mediaId, TEXT, 7 * 24 * 3600),
    // Uploads never finished go once a minute (several instances may do it, harmlessly).
    housekeeping: async () => {
      if (Date.now() - lastExpiry < 60_000) return;
      lastExpiry = Date.now();
      const expired = await service.expireUploads();
      if (expired > 0) logger.info({ expired }, 'unfinished uploads removed');
    },
    logger,
  });
  const subscriptions = await subscribeConsumers(events.bus, service, logger);
  const uploads = {
    store,
    storage,
    datastore,
    signer,
    service,
    maxBytes: limits.maxBytes,
    workRoot,
    onEvent: () => events.relay.notify(),
    logger,
  };
  const tus = createTusServer(uploads);

  const processing = worker;
  const server = await createSubgraphServer<MediaContext>({
    name: 'media',
    logger,
    operationLimits: operationLimitsOf(config),
    introspection: introspectionOf(config),
    typeDefs: mediaTypeDefs,
    resolvers: createResolvers(service, signer, config.MEDIA_DOWNLOAD_URL_TTL_SECONDS),
    auth: tokens.verifier,
    readiness: [
      { name: 'store', check: () => store.ping() },
      { name: 'storage', check: () => storage.ping() },
      { name: 'events', check: () => events.bus.ping(), soft: true },
      ...tokens.readiness,
    ],
    dependencies,
    configure: async (app) => {
      await registerUploadRoutes(app, tus, uploads);
      await registerFileRoutes(app, { store, storage, signer });
    },
    ...((options.discovery ?? true)
      ? {
          discovery: {
            ...discoveryFromEnv(config),
            routes: [
              { prefix: UPLOADS_PATH, websocket: false },
              { prefix: FILES_PATH, websocket: false },
            ],
          },
        }
      : {}),
    onClose: [
      async () => {
        for (const subscription of subscriptions) await subscription.stop();
      },
      () => processing.stop(),
      ...events.closers,
      () => tokens.close(),
      () => storage.close(),
      () => store.close(),
    ],
  });
  events.metrics.register(server.metrics.registry, server.dependencies);
  processing.register(server.metrics.registry);
  events.relay.start();
  processing.start();
  return {
    server,
    store,
    storage,
    worker: processing,
    signer,
    listen: () => server.listen({ port: config.MEDIA_PORT, host: config.HOST }),
    close: () => server.close(),
  };
}
