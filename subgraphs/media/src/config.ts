import {
  commonEnvSchema,
  env,
  keyRingVariable,
  mongoEnvSchema,
  sealingEnvSchema,
  tokenEnvSchema,
} from '@aiva/shared';
import { z } from 'zod';

const MIB = 1024 * 1024;

/** A byte size: a whole number of bytes > 0. */
const bytes = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const mediaEnvSchema = commonEnvSchema
  .extend(tokenEnvSchema.shape)
  .extend(mongoEnvSchema.shape)
  .extend(sealingEnvSchema.shape)
  .extend({
    MEDIA_PORT: env.port(3004),
    /** SQLite file of the embedded store; default `<DATA_DIR>/media.sqlite`. */
    MEDIA_DB_FILE: z.string().optional(),
    /** When set, media records live in MongoDB instead of SQLite. */
    MONGODB_URL: env.url(['mongodb', 'mongodb+srv']).optional(),
    /**
     * Without S3_BUCKET: where files are kept (`files/`) and uploads in progress staged (`uploads/`); default
     * `<DATA_DIR>/media`. Several instances on one machine share it.
     */
    MEDIA_DIR: z.string().optional(),
    /** When set, files and uploads in progress are kept in this S3 bucket (any S3-compatible service). */
    S3_BUCKET: z.string().optional(),
    S3_REGION: z.string().default('us-east-1'),
    /** The S3 API's URL for S3-compatible services (MinIO, R2, …); unset: AWS. */
    S3_ENDPOINT: env.url(['http', 'https']).optional(),
    /** Unset: the AWS SDK's default credential chain (instance roles, AWS_* variables, …). */
    S3_ACCESS_KEY_ID: z.string().optional(),
    S3_SECRET_ACCESS_KEY: z.string().optional(),
    /** Path-style addressing (`<endpoint>/<bucket>/<key>`), which most S3-compatible services need. */
    S3_FORCE_PATH_STYLE: z
      .enum(['true', 'false'], { message: 'must be true or false' })
      .transform((value) => value === 'true')
      .default(false),
    /** A key prefix inside the bucket (e.g. `aiva/`), so one bucket can serve several deployments. */
    S3_PREFIX: z.string().optional(),
    /**
     * The public base URL upload and download URLs start with: the gateway's, which forwards `/media/…` to a
     * media instance.
     */
    MEDIA_PUBLIC_URL: env.url(['http', 'https']).default('http://localhost:3000'),
    /**
     * Keys signing upload and download URLs, `<kid>:<base64url 32-byte key>[,…]` (the first signs, all verify:
     * list an old key after a new one while URLs signed with it are still out). Unset: `<DATA_DIR>/media-url-keys.json`,
     * created on first start. Every media instance must have the same keys.
     */
    MEDIA_URL_KEYS: keyRingVariable(),
    /** How long an upload URL is valid, in seconds (an upload not finished by then is removed). */
    MEDIA_UPLOAD_URL_TTL_SECONDS: env.positiveInt(6 * 3600),
    /** How long a download URL is valid, in seconds. */
    MEDIA_DOWNLOAD_URL_TTL_SECONDS: env.positiveInt(3600),
    /** Largest file per kind, in bytes. */
    MEDIA_MAX_IMAGE_BYTES: bytes(25 * MIB),
    MEDIA_MAX_VIDEO_BYTES: bytes(500 * MIB),
    MEDIA_MAX_AUDIO_BYTES: bytes(100 * MIB),
    MEDIA_MAX_DOCUMENT_BYTES: bytes(50 * MIB),
    /** Bytes one person may hold (uploads in progress count with their declared size). */
    MEDIA_QUOTA_BYTES: bytes(1024 * MIB),
    /** Largest image, in pixels (width × height), decided from the header before anything is decoded. */
    MEDIA_MAX_PIXELS: env.positiveInt(100_000_000),
    /** Longest video or audio, in seconds. */
    MEDIA_MAX_DURATION_SECONDS: env.positiveInt(3 * 3600),
    /** Pages of a document whose text is extracted. */
    MEDIA_MAX_PDF_PAGES: env.positiveInt(500),
    /** Characters of extracted text kept per document. */
    MEDIA_MAX_TEXT_CHARS: env.positiveInt(2_000_000),
    /** Files processed at once by one instance. */
    MEDIA_PROCESSING_CONCURRENCY: env.positiveInt(2),
    /** Deadline of one processing run (ffmpeg included), in ms. */
    MEDIA_PROCESSING_TIMEOUT_MS: env.positiveInt(30 * 60_000),
    /** Attempts of one file's processing after transient failures (a refused file is not retried). */
    MEDIA_PROCESSING_MAX_ATTEMPTS: env.positiveInt(3),
    /**
     * How long a worker holds a file it processes without renewing (renewed every third of it): when a worker
     * dies, another instance (or the restarted one) takes the file over after this, in ms.
     */
    MEDIA_PROCESSING_LEASE_MS: env.positiveInt(60_000),
  })
  .superRefine((config, ctx) => {
    if (Boolean(config.S3_ACCESS_KEY_ID) !== Boolean(config.S3_SECRET_ACCESS_KEY)) {
      ctx.addIssue({
        code: 'custom',
        path: ['S3_ACCESS_KEY_ID'],
        message: 'set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY together, or neither',
      });
    }
  });
export type MediaConfig = z.infer<typeof mediaEnvSchema>;
