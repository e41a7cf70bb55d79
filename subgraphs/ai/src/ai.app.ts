import { join } from 'node:path';
import {
  type AccessTokenVerifier,
  createDependencyMonitor,
  createLogger,
  createServiceEvents,
  createServiceRouting,
  createServiceTokenSource,
  createSubgraphServer,
  discoveryFromEnv,
  introspectionOf,
  type Logger,
  loadTypeDefs,
  mongoTimeoutsOf,
  operationLimitsOf,
  type SessionRevocations,
  type SubgraphApp,
  type SubgraphAppOptions,
  serviceCredentialOf,
  serviceEventsConfigOf,
  subgraphTokenVerifier,
} from '@aiva/shared';
import type { AiConfig } from './config.js';
import { ConversationService } from './conversation.service.js';
import { subscribeConsumers } from './events.js';
import { GenerationService } from './generation.service.js';
import {
  createQdrantStore,
  LexicalEmbedder,
  OnnxEmbedder,
  openSqliteVecStore,
  type VectorStore,
} from './knowledge/index.js';
import { type EmbedTexts, KnowledgeService, localEmbedder, providerEmbedder } from './knowledge.service.js';
import { createMediaClient } from './media-client.js';
import { type AiModels, createAiModels, providerRegistryOf } from './providers/index.js';
import { type AiContext, createResolvers, streamUrlOf } from './resolvers.js';
import type { AiStore } from './store/ai.store.js';
import { openSqliteAiStore } from './store/sqlite.js';
import { connectRedisRunLog } from './streams/redis-run-log.js';
import type { RunLog } from './streams/run-log.js';
import { openSqliteRunLog } from './streams/sqlite-run-log.js';
import { registerStreamRoute, STREAMS_PATH } from './streams/sse.js';
import { UsageMeter } from './usage.js';

/** The subgraph's SDL, read from the file supergraph.yaml composes. */
export const aiTypeDefs = loadTypeDefs(new URL('../schema.graphql', import.meta.url));

/** The source of the events the AI subgraph would publish (none yet; its outbox is ready). */
export const EVENT_SOURCE = 'ai';

/** Replies still streaming after this long have lost their writer (a crashed instance): they are failed. */
const STALE_REPLY_MS = 10 * 60_000;

export interface AiApp extends SubgraphApp {
  store: AiStore;
  models: AiModels;
}

export interface AiAppOptions extends SubgraphAppOptions<AiConfig> {
  store?: AiStore;
  verifier?: AccessTokenVerifier;
  revocations?: SessionRevocations;
}

export async function openAiStore(config: AiConfig): Promise<AiStore> {
  if (config.MONGODB_URL) {
    const { connectMongoAiStore } = await import('./store/mongo.js');
    return connectMongoAiStore({ url: config.MONGODB_URL, ...mongoTimeoutsOf(config) });
  }
  return openSqliteAiStore({ file: config.AI_DB_FILE ?? join(config.DATA_DIR, 'ai.sqlite') });
}

/** Qdrant with QDRANT_URL, else sqlite-vec under DATA_DIR. */
function openVectorStore(config: AiConfig): VectorStore {
  if (config.QDRANT_URL) {
    return createQdrantStore({
      url: config.QDRANT_URL,
      ...(config.QDRANT_API_KEY ? { apiKey: config.QDRANT_API_KEY } : {}),
    });
  }
  return openSqliteVecStore({
    file: config.AI_VECTORS_DB_FILE ?? join(config.DATA_DIR, 'ai-vectors.sqlite'),
  });
}

/**
 * The configured embedding provider, else a local ONNX model directory, else the lexical embedder; `close`
 * releases the ONNX session.
 */
async function embedderOf(
  config: AiConfig,
  models: AiModels,
  logger: Logger,
): Promise<{ embed: EmbedTexts; close(): Promise<void> }> {
  const nothingToClose = async () => {};
  if (models.configured().embedding.length > 0) {
    logger.info({ models: models.configured().embedding }, 'embeddings from the configured provider');
    return { embed: providerEmbedder(models), close: nothingToClose };
  }
  if (config.AI_LOCAL_MODEL_DIR) {
    const onnx = await OnnxEmbedder.fromDirectory(config.AI_LOCAL_MODEL_DIR);
    logger.info({ model: onnx.model, dimensions: onnx.dimensions }, 'embeddings from a local ONNX model');
    return { embed: localEmbedder(onnx), close: () => onnx.close() };
  }
  logger.info(
    'embeddings from the local lexical embedder (words, not meaning): set AI_EMBEDDING_MODELS or AI_LOCAL_MODEL_DIR for semantic search',
  );
  return { embed: localEmbedder(new LexicalEmbedder()), close: nothingToClose };
}

/** Redis streams with REDIS_URL (any instance), else a SQLite file the instances on this machine share. */
async function openRunLog(config: AiConfig): Promise<RunLog> {
  if (config.REDIS_URL)
    return connectRedisRunLog({ url: config.REDIS_URL, connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS });
  return openSqliteRunLog({ file: config.AI_RUNS_DB_FILE ?? join(config.DATA_DIR, 'ai-runs.sqlite') });
}

/** config → adapters → subgraph server. Nothing listens until `listen()`. */
export async function createAiApp(options: AiAppOptions): Promise<AiApp> {
  const { config } = options;
  const logger = options.logger ?? createLogger('ai', { level: config.LOG_LEVEL });
  // The AI SDK prints its warnings to the console; the service's log is the place for what matters.
  (globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;
  const store = options.store ?? (await openAiStore(config));
  const models = createAiModels(providerRegistryOf(config), {
    onAttempt: (attempt) => {
      if (attempt.outcome !== 'ok') logger.warn({ ...attempt }, 'AI provider attempt failed');
    },
  });
  logger.info({ chat: models.configured().chat.map((m) => `${m.provider}:${m.model}`) }, 'AI models');
  const vectors = openVectorStore(config);
  const embedder = await embedderOf(config, models, logger);
  const runs = await openRunLog(config);
  const dependencies = createDependencyMonitor(logger);
  const tokens = await subgraphTokenVerifier({
    config,
    ...(options.verifier ? { given: options.verifier } : {}),
    ...(options.revocations ? { revocations: options.revocations } : {}),
    dependencies,
    logger,
  });
  const meter = new UsageMeter(store, { requests: config.AI_DAILY_REQUESTS, tokens: config.AI_DAILY_TOKENS });
  const knowledge = new KnowledgeService({
    store,
    vectors,
    embed: embedder.embed,
    meter: async (ownerId, capability, used) => {
      await meter.record(ownerId, capability, used, 0);
    },
    logger,
  });
  const conversations = new ConversationService({
    store,
    models,
    knowledge,
    meter,
    runs,
    streamTtlMs: config.AI_STREAM_TTL_SECONDS * 1000,
    contextMessages: config.AI_CONTEXT_MESSAGES,
    knowledgeTopK: config.AI_KNOWLEDGE_TOP_K,
    logger,
  });
  const events = await createServiceEvents({
    store,
    bus: options.bus,
    source: EVENT_SOURCE,
    logger,
    ...serviceEventsConfigOf(config),
  });
  // Other services are called on an instance from the routing table (the supergraph's URLs until it answers).
  const routing = createServiceRouting({
    orchestratorUrl: config.ORCHESTRATOR_URL,
    follow: options.discovery ?? true,
    logger,
  });
  const { router } = routing;
  routing.start();
  // ai calls media as `service:ai`, with tokens auth issues for its credential.
  const serviceTokens = createServiceTokenSource({
    service: EVENT_SOURCE,
    credential: await serviceCredentialOf(config, EVENT_SOURCE),
    router,
  });
  const media = createMediaClient({ router, token: (signal) => serviceTokens.token(signal) });
  const generation = new GenerationService({
    models,
    media,
    meter,
    maxTranscriptionBytes: config.AI_MAX_TRANSCRIPTION_BYTES,
    logger,
  });
  const mediaText = (textUrl: string) => media.readText(textUrl, config.AI_MAX_DOCUMENT_CHARS);
  const subscriptions = await subscribeConsumers(events.bus, store, knowledge, mediaText, logger);
  const housekeeping = setInterval(() => {
    conversations
      .failStale(STALE_REPLY_MS)
      .then((failed) => failed > 0 && logger.warn({ failed }, 'interrupted replies marked failed'))
      .catch(() => {});
  }, 60_000);
  housekeeping.unref();

  const server = await createSubgraphServer<AiContext>({
    name: 'ai',
    logger,
    operationLimits: operationLimitsOf(config),
    introspection: introspectionOf(config),
    typeDefs: aiTypeDefs,
    resolvers: createResolvers({
      conversations,
      generation,
      knowledge,
      models,
      meter,
      limits: {
        messageChars: config.AI_MAX_MESSAGE_CHARS,
        documentChars: config.AI_MAX_DOCUMENT_CHARS,
        queryChars: config.AI_MAX_QUERY_CHARS,
        imagePromptChars: config.AI_MAX_IMAGE_PROMPT_CHARS,
        speechChars: config.AI_MAX_SPEECH_CHARS,
      },
      streamUrl: streamUrlOf(config.AI_PUBLIC_URL),
      usageTotals: (day) => store.usageTotals(day),
      listDocuments: async (ownerId, first) => (await store.listDocuments(ownerId, { first })).items,
      findDocument: async (ownerId, documentId) =>
        (await store.findDocuments([documentId])).find((doc) => doc.ownerId === ownerId) ?? null,
    }),
    auth: tokens.verifier,
    readiness: [
      { name: 'store', check: () => store.ping() },
      { name: 'vectors', check: () => vectors.ping() },
      { name: 'streams', check: () => runs.ping() },
      { name: 'events', check: () => events.bus.ping(), soft: true },
      ...tokens.readiness,
    ],
    dependencies,
    configure: (app, { tokenCheck }) => registerStreamRoute(app, { log: runs, tokenCheck }),
    ...((options.discovery ?? true)
      ? { discovery: { ...discoveryFromEnv(config), routes: [{ prefix: STREAMS_PATH, websocket: false }] } }
      : {}),
    onClose: [
      async () => {
        clearInterval(housekeeping);
        for (const subscription of subscriptions) await subscription.stop();
      },
      () => conversations.close(),
      () => routing.stop(),
      ...events.closers,
      () => runs.close(),
      () => vectors.close(),
      () => embedder.close(),
      () => tokens.close(),
      () => store.close(),
    ],
  });
  events.metrics.register(server.metrics.registry, server.dependencies);
  events.relay.start();
  return {
    server,
    store,
    models,
    listen: () => server.listen({ port: config.AI_PORT, host: config.HOST }),
    close: () => server.close(),
  };
}
