/** Whether a shared fetch failed because of its leader's own budget or cancellation, not the subgraph. */
export class LeaderAbortedError extends Error {
  constructor() {
    super('The request that made this subgraph fetch ended first');
    this.name = 'LeaderAbortedError';
  }
}

export interface InflightDedupe<T> {
  /**
   * Runs `fetch` for `key`, or joins the fetch of the same key already in flight: the joiners get the same
   * answer. A fetch is shared only while it is in flight; nothing is kept after it ends.
   */
  run(key: string, fetch: () => Promise<T>): Promise<T>;
  /** Fetches in flight now (for tests and metrics). */
  readonly size: number;
}

/**
 * In-flight deduplication of identical subgraph fetches. The caller decides what may be shared (queries only,
 * never mutations) and builds the key from everything that can change the answer: the subgraph, the document,
 * the operation name, the variables and the caller's identity (its credentials). Per-request headers that do
 * not change the answer (request id, trace context, address) are the leader's.
 */
export function createInflightDedupe<T>(): InflightDedupe<T> {
  const inflight = new Map<string, Promise<T>>();
  return {
    run(key, fetch) {
      const current = inflight.get(key);
      if (current) return current;
      const started = fetch().finally(() => inflight.delete(key));
      inflight.set(key, started);
      return started;
    },
    get size() {
      return inflight.size;
    },
  };
}
