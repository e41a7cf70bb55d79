// The deadlines of a MongoDB store, from configuration. Kept apart from mongo-kit.ts so that reading the
// configuration never loads mongoose.
import { z } from 'zod';
import { env } from '../config.js';

/** Deadlines of every MongoDB call of a store (see `connectMongo`). */
export interface MongoTimeouts {
  /**
   * Server-side time limit of a query or find-and-modify (`maxTimeMS`), of a transaction's commit
   * (`maxCommitTimeMS`), and how long a transaction may keep retrying transient errors (default 10,000).
   */
  operationTimeoutMs?: number;
  /** How long an operation waits for a usable server (`serverSelectionTimeoutMS`, default 5,000). */
  serverSelectionTimeoutMs?: number;
  /**
   * How long a socket may stay silent during an operation (`socketTimeoutMS`, default 30,000): the backstop for a
   * server that hangs, and the bound of plain writes. Keep it above the operation timeout.
   */
  socketTimeoutMs?: number;
  /** How long opening a connection may take (`connectTimeoutMS`, default 10,000). */
  connectTimeoutMs?: number;
}

export const DEFAULT_MONGO_TIMEOUTS: Required<MongoTimeouts> = {
  operationTimeoutMs: 10_000,
  serverSelectionTimeoutMs: 5_000,
  socketTimeoutMs: 30_000,
  connectTimeoutMs: 10_000,
};

/** The MongoDB deadline variables; a service with MONGODB_URL extends its schema with these. */
export const mongoEnvSchema = z.object({
  MONGODB_OPERATION_TIMEOUT_MS: env.positiveInt(DEFAULT_MONGO_TIMEOUTS.operationTimeoutMs),
  MONGODB_SERVER_SELECTION_TIMEOUT_MS: env.positiveInt(DEFAULT_MONGO_TIMEOUTS.serverSelectionTimeoutMs),
  MONGODB_SOCKET_TIMEOUT_MS: env.positiveInt(DEFAULT_MONGO_TIMEOUTS.socketTimeoutMs),
  MONGODB_CONNECT_TIMEOUT_MS: env.positiveInt(DEFAULT_MONGO_TIMEOUTS.connectTimeoutMs),
});
export type MongoEnv = z.infer<typeof mongoEnvSchema>;

/** The `connectMongo` deadlines of a service's configuration. */
export function mongoTimeoutsOf(config: Partial<MongoEnv>): MongoTimeouts {
  return {
    ...(config.MONGODB_OPERATION_TIMEOUT_MS
      ? { operationTimeoutMs: config.MONGODB_OPERATION_TIMEOUT_MS }
      : {}),
    ...(config.MONGODB_SERVER_SELECTION_TIMEOUT_MS
      ? { serverSelectionTimeoutMs: config.MONGODB_SERVER_SELECTION_TIMEOUT_MS }
      : {}),
    ...(config.MONGODB_SOCKET_TIMEOUT_MS ? { socketTimeoutMs: config.MONGODB_SOCKET_TIMEOUT_MS } : {}),
    ...(config.MONGODB_CONNECT_TIMEOUT_MS ? { connectTimeoutMs: config.MONGODB_CONNECT_TIMEOUT_MS } : {}),
  };
}
