import type { Cache } from '../cache/cache.js';

/** The result @fastify/rate-limit expects from a store: hits in the current window and the ms left in it. */
export interface RateLimitHits {
  current: number;
  ttl: number;
}

/**
 * The store interface of @fastify/rate-limit (v10), restated so that this package does not depend on the
 * plugin: the plugin calls `incr(key, callback, timeWindowMs, max)` once per request.
 */
export interface RateLimitStore {
  incr(
    key: string,
    callback: (error: Error | null, result?: RateLimitHits) => void,
    timeWindowMs?: number,
    max?: number,
  ): void;
  /** A store for a route with its own limits (`config.rateLimit` on a route): keys of its own. */
  child(routeOptions: object): RateLimitStore;
}

/** What the plugin's `store` option takes: a class it instantiates itself (with its options). */
export type RateLimitStoreCtor = new (pluginOptions?: unknown) => RateLimitStore;

export interface CacheRateLimitStoreOptions {
  cache: Cache;
  /** Prepended to every key, inside the cache's own prefix (default `ratelimit:`). */
  keyPrefix?: string;
  /**
   * Called when the cache could not count a hit (the request then goes on unlimited with the plugin's
   * `skipOnError`): count it as degraded, e.g. `health.degraded('rate_limit')`.
   */
  onError?: (error: unknown) => void;
}

/** The window the plugin uses when none is given (its own default: one minute). */
const DEFAULT_WINDOW_MS = 60_000;

/**
 * A @fastify/rate-limit store on the Cache port: a fixed window per key, counted with `Cache.increment` (the
 * first hit starts the window). On Redis the count is shared by every instance; in memory it is per process.
 */
export class CacheRateLimitStore implements RateLimitStore {
  readonly cache: Cache;
  readonly keyPrefix: string;
  private readonly onError: ((error: unknown) => void) | undefined;

  constructor(options: CacheRateLimitStoreOptions) {
    this.cache = options.cache;
    this.keyPrefix = options.keyPrefix ?? 'ratelimit:';
    this.onError = options.onError;
  }

  incr(
    key: string,
    callback: (error: Error | null, result?: RateLimitHits) => void,
    timeWindowMs: number = DEFAULT_WINDOW_MS,
  ): void {
    // A window must expire: anything below 1 ms counts as 1 ms.
    const windowSeconds = Math.max(1, timeWindowMs) / 1000;
    // Two-argument then: an exception thrown by the callback must not call it a second time.
    this.cache.increment(this.keyPrefix + key, windowSeconds).then(
      ({ value, ttlMs }) => callback(null, { current: value, ttl: ttlMs }),
      (error: unknown) => {
        try {
          this.onError?.(error);
        } catch {
          // Counting must never keep the request from going on.
        }
        callback(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  child(routeOptions: object): CacheRateLimitStore {
    const route = (routeOptions as { routeInfo?: { method?: unknown; url?: unknown } }).routeInfo;
    const method = Array.isArray(route?.method) ? route.method.join(',') : String(route?.method ?? '');
    const scope = `${method}${String(route?.url ?? '')}`;
    return new CacheRateLimitStore({
      cache: this.cache,
      keyPrefix: `${this.keyPrefix}${scope || 'scoped'}:`,
      ...(this.onError ? { onError: this.onError } : {}),
    });
  }
}

/**
 * The `store` option of @fastify/rate-limit for a cache: `app.register(rateLimit, { store:
 * cacheRateLimitStore({ cache }) })`. The plugin instantiates the class itself, so the cache is bound here.
 */
export function cacheRateLimitStore(options: CacheRateLimitStoreOptions): RateLimitStoreCtor {
  return class BoundCacheRateLimitStore extends CacheRateLimitStore {
    constructor() {
      super(options);
    }
  };
}

/**
 * The error a rate limiter throws when a client is over its limit (@fastify/rate-limit's
 * `errorResponseBuilder`): HTTP 429, which the shared error handler turns into RATE_LIMITED with `retryAfter`.
 */
export function rateLimitExceeded(context: { ttl: number; statusCode?: number }): Error & {
  statusCode: number;
  retryAfter: number;
} {
  const retryAfter = Math.max(1, Math.ceil(context.ttl / 1000));
  return Object.assign(new Error(`Too many requests: retry in ${retryAfter} s`), {
    statusCode: context.statusCode ?? 429,
    retryAfter,
  });
}
