import { commonEnvSchema, env, mongoEnvSchema, tokenEnvSchema } from '@aiva/shared';
import { z } from 'zod';
import { aiProviderEnvSchema, checkAiProviderEnv } from './providers/index.js';

export const aiEnvSchema = commonEnvSchema
  .extend(tokenEnvSchema.shape)
  .extend(mongoEnvSchema.shape)
  .extend(aiProviderEnvSchema.shape)
  .extend({
    AI_PORT: env.port(3003),
    /** SQLite file of the embedded store (conversations, documents, usage); default `<DATA_DIR>/ai.sqlite`. */
    AI_DB_FILE: z.string().optional(),
    /** When set, the AI store lives in MongoDB instead of SQLite. */
    MONGODB_URL: env.url(['mongodb', 'mongodb+srv']).optional(),
    /** Qdrant for vectors (`http://qdrant:6333`); unset: sqlite-vec in AI_VECTORS_DB_FILE. */
    QDRANT_URL: env.url(['http', 'https']).optional(),
    QDRANT_API_KEY: z.string().optional(),
    /** Without QDRANT_URL: the sqlite-vec file; default `<DATA_DIR>/ai-vectors.sqlite`. */
    AI_VECTORS_DB_FILE: z.string().optional(),
    /**
     * Without an embedding provider: a local sentence-transformers model exported for Transformers.js (a
     * directory with config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx; read from disk, never
     * downloaded) for semantic embeddings on the CPU. Unset: the local lexical embedder.
     */
    AI_LOCAL_MODEL_DIR: z.string().optional(),
    /** Without REDIS_URL: the run log of reply streams the instances on this machine share. */
    AI_RUNS_DB_FILE: z.string().optional(),
    /** The public base URL of reply streams: the gateway's. */
    AI_PUBLIC_URL: env.url(['http', 'https']).default('http://localhost:3000'),
    /** How long a reply's stream can be read and resumed, in seconds. */
    AI_STREAM_TTL_SECONDS: env.positiveInt(3600),
    /** Earlier messages of a conversation sent with each question. */
    AI_CONTEXT_MESSAGES: env.positiveInt(20),
    /** Knowledge chunks a question with `useKnowledge` draws on. */
    AI_KNOWLEDGE_TOP_K: env.positiveInt(5),
    /** Per person and UTC day: requests of each capability. */
    AI_DAILY_REQUESTS: env.positiveInt(500),
    /** Per person and UTC day: tokens (in and out) of all capabilities together. */
    AI_DAILY_TOKENS: env.positiveInt(500_000),
    /** Longest message a person sends, in characters. */
    AI_MAX_MESSAGE_CHARS: env.positiveInt(16_000),
    /** Longest text `indexDocument` takes, in characters. */
    AI_MAX_DOCUMENT_CHARS: env.positiveInt(1_000_000),
    /** Longest `semanticSearch` query, in characters. */
    AI_MAX_QUERY_CHARS: env.positiveInt(2_000),
    /** Longest `generateImage` prompt, in characters. */
    AI_MAX_IMAGE_PROMPT_CHARS: env.positiveInt(4_000),
    /** Longest `synthesizeSpeech` text, in characters (OpenAI's limit). */
    AI_MAX_SPEECH_CHARS: env.positiveInt(4_096),
    /** Largest audio or video `transcribe` sends to a provider, in bytes (OpenAI's limit: 25 MiB). */
    AI_MAX_TRANSCRIPTION_BYTES: env.positiveInt(25 * 1024 * 1024),
  })
  .superRefine((config, ctx) => checkAiProviderEnv(config, ctx));
export type AiConfig = z.infer<typeof aiEnvSchema>;
