import { closeRedis, connectRedis, type RedisClient } from '@aiva/shared';
import type { RunEvent, RunLog } from './run-log.js';

export interface RedisRunLogOptions {
  url: string;
  /** Prefix of every key and channel (default `aiva:ai:`). */
  keyPrefix?: string;
  connectTimeoutMs?: number;
}

/**
 * The run log on Redis, shared by every instance: a run is a hash (its owner and end) and a stream of its events
 * with ids `<seq>-0`, both expiring with the run; an append is also published on the run's channel, which wakes
 * the readers waiting on any instance (one subscriber connection each, not one blocking read per reader).
 */
export async function connectRedisRunLog(options: RedisRunLogOptions): Promise<RunLog> {
  const prefix = options.keyPrefix ?? 'aiva:ai:';
  const client: RedisClient = await connectRedis({
    url: options.url,
    ...(options.connectTimeoutMs ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
  });
  const subscriber = client.duplicate();
  subscriber.on('error', () => {}); // the main client reports connection trouble; this one reconnects quietly
  await subscriber.connect();
  const runKey = (runId: string) => `${prefix}run:${runId}`;
  const eventsKey = (runId: string) => `${prefix}run:${runId}:events`;
  const channel = (runId: string) => `${prefix}run:${runId}:appended`;

  const readAfter = async (runId: string, afterSeq: number, limit: number): Promise<RunEvent[]> => {
    const entries = await client.xRange(eventsKey(runId), `(${afterSeq}-0`, '+', { COUNT: limit });
    return entries.map((entry) => ({
      seq: Number(entry.id.split('-')[0]),
      type: entry.message.type as RunEvent['type'],
      data: JSON.parse(entry.message.data ?? 'null'),
    }));
  };

  return {
    kind: 'redis',
    async create(runId, ownerId, ttlMs) {
      const endsAt = Date.now() + ttlMs;
      await client.hSet(runKey(runId), { owner: ownerId, endsAt: String(endsAt) });
      await client.pExpireAt(runKey(runId), endsAt);
    },
    async ownerOf(runId) {
      return (await client.hGet(runKey(runId), 'owner')) ?? null;
    },
    async append(runId, event) {
      const endsAt = Number((await client.hGet(runKey(runId), 'endsAt')) ?? Date.now() + 60_000);
      await client.xAdd(eventsKey(runId), `${event.seq}-0`, {
        type: event.type,
        data: JSON.stringify(event.data ?? null),
      });
      await client.pExpireAt(eventsKey(runId), endsAt);
      await client.publish(channel(runId), String(event.seq));
    },
    readAfter,
    async waitAfter(runId, afterSeq, timeoutMs, signal) {
      let listener: (() => void) | undefined;
      const woken = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        listener = done;
        signal?.addEventListener('abort', done, { once: true });
      });
      const wake = () => listener?.();
      await subscriber.subscribe(channel(runId), wake);
      try {
        // Appended between the caller's read and the subscription: no message will come for it.
        if ((await readAfter(runId, afterSeq, 1)).length > 0) wake();
        await woken;
      } finally {
        await subscriber.unsubscribe(channel(runId), wake).catch(() => {});
      }
    },
    async ping() {
      await client.ping();
    },
    async close() {
      await closeRedis(subscriber);
      await closeRedis(client);
    },
  };
}
