import { z } from 'zod';
import { routedCall, ServiceUnavailableError } from '../discovery/routed-call.js';
import type { ServiceRouter } from '../discovery/service-router.js';
import { AivaError } from '../errors.js';
import { untilAborted } from '../sleep.js';
import { isServiceName } from './service-credentials.js';

/** Auth's token endpoint (OAuth 2.0 client credentials, RFC 6749 §4.4), on auth's own port only. */
export const OAUTH_TOKEN_PATH = '/oauth/token';
/** The service that issues service tokens. */
const AUTH = 'auth';
/** A token is replaced this long before it expires (at most half its lifetime). */
const REFRESH_MARGIN_MS = 60_000;

/** Short-lived service tokens (`sub: service:<name>`, `roles: ['service']`) to call other services with. */
export interface ServiceTokenSource {
  /**
   * A valid access token: the cached one until 60 s before it expires, else a new one from auth (concurrent
   * callers share one request). `signal` only stops this caller's wait, not a request others share.
   */
  token(signal?: AbortSignal): Promise<string>;
}

export interface ServiceTokenSourceOptions {
  /** This service's name, e.g. `ai`: the OAuth client_id. */
  service: string;
  /** Its credential (`serviceCredentialOf(config, service)`): the OAuth client_secret. Never logged. */
  credential: string;
  /** Routes to the `auth` service's instances. */
  router: ServiceRouter;
  /** Deadline of one request to auth, in ms; default 5000. */
  timeoutMs?: number;
  /** The clock, epoch ms (tests). */
  now?: () => number;
}

const tokenResponseSchema = z.object({
  access_token: z.string().min(1),
  token_type: z.string().regex(/^bearer$/i),
  expires_in: z.number().int().positive(),
});

type Answer =
  | { kind: 'token'; token: string; expiresIn: number }
  | { kind: 'refused' }
  | { kind: 'failed'; status: number; error?: string };

interface CachedToken {
  token: string;
  /** When to ask for a new one (epoch ms). */
  refreshAt: number;
}

/** RFC 6749 §2.3.1: client_id and client_secret are form-encoded before they go into the Basic credentials. */
function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+');
}

function unavailable(cause?: unknown): AivaError {
  const error = new AivaError('INTERNAL_SERVER_ERROR', 'The auth service is unavailable', {
    serviceName: AUTH,
  });
  if (cause !== undefined) Object.defineProperty(error, 'cause', { value: cause, enumerable: false });
  return error;
}

/**
 * Service tokens from auth's `POST /oauth/token` (client credentials, HTTP Basic with the service's name and
 * credential), through the router to an instance of auth. A refused credential is an error naming
 * SERVICE_CREDENTIAL (never its value); auth unreachable or failing: "The auth service is unavailable".
 */
export function createServiceTokenSource(options: ServiceTokenSourceOptions): ServiceTokenSource {
  const { service, router } = options;
  if (!isServiceName(service)) throw new RangeError('service must be a lower-case service name');
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const authorization = `Basic ${Buffer.from(`${formEncode(service)}:${formEncode(options.credential)}`).toString('base64')}`;
  let cached: CachedToken | undefined;
  let inflight: Promise<CachedToken> | undefined;

  async function request(): Promise<CachedToken> {
    const requestedAt = now();
    let answer: Answer;
    try {
      answer = await routedCall<Answer>(
        router,
        AUTH,
        { retryable: true, timeoutMs },
        async (endpoint, signal) => {
          const response = await fetch(`${endpoint.url}${OAUTH_TOKEN_PATH}`, {
            method: 'POST',
            headers: {
              authorization,
              'content-type': 'application/x-www-form-urlencoded',
              accept: 'application/json',
            },
            body: 'grant_type=client_credentials',
            signal,
          });
          const body = (await response.json().catch(() => undefined)) as unknown;
          if (response.status === 401) return { value: { kind: 'refused' }, outcome: 'success' };
          if (response.ok) {
            const parsed = tokenResponseSchema.safeParse(body);
            if (parsed.success) {
              return {
                value: { kind: 'token', token: parsed.data.access_token, expiresIn: parsed.data.expires_in },
                outcome: 'success',
              };
            }
          }
          const error = (body as { error?: unknown } | undefined)?.error;
          return {
            value: {
              kind: 'failed',
              status: response.status,
              ...(typeof error === 'string' ? { error: error.slice(0, 64) } : {}),
            },
            outcome: response.status >= 500 || response.ok ? 'error' : 'success',
            // Shutting down: the request did nothing there, another instance may answer.
            refused: response.status === 503,
          };
        },
      );
    } catch (error) {
      if (error instanceof ServiceUnavailableError) throw unavailable(error);
      throw error;
    }
    if (answer.kind === 'token') {
      const lifetimeMs = answer.expiresIn * 1000;
      return {
        token: answer.token,
        refreshAt: requestedAt + lifetimeMs - Math.min(REFRESH_MARGIN_MS, lifetimeMs / 2),
      };
    }
    if (answer.kind === 'refused') {
      throw new AivaError(
        'INTERNAL_SERVER_ERROR',
        `This service's credential was refused by auth: check SERVICE_CREDENTIAL of ${service} (pnpm orchestrator service-credential ${service})`,
        { serviceName: AUTH },
      );
    }
    if (answer.status >= 500 || answer.status < 400) throw unavailable();
    throw new AivaError(
      'INTERNAL_SERVER_ERROR',
      `auth refused the service token request (HTTP ${answer.status}${answer.error ? `, ${answer.error}` : ''})`,
      { serviceName: AUTH },
    );
  }

  return {
    token(signal) {
      if (cached && now() < cached.refreshAt) return Promise.resolve(cached.token);
      if (!inflight) {
        inflight = request()
          .then((fresh) => {
            cached = fresh;
            return fresh;
          })
          .finally(() => {
            inflight = undefined;
          });
        // A caller that gave up does not leave the shared request's failure unhandled.
        inflight.catch(() => {});
      }
      return untilAborted(
        inflight.then((fresh) => fresh.token),
        signal,
      );
    },
  };
}
