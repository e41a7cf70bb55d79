import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { AivaError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';

/** A GraphQL error body for failures that happen before GraphQL runs (bad JSON, body too large, ...). */
export function httpErrorBody(message: string, code: ErrorCode, extra: Record<string, unknown> = {}) {
  return { errors: [{ message, extensions: { ...extra, code } }] };
}

/** Answers with `status` and a GraphQL error body. */
export function sendHttpError(
  reply: FastifyReply,
  status: number,
  message: string,
  code: ErrorCode,
  extra: Record<string, unknown> = {},
) {
  return reply
    .status(status)
    .type('application/json')
    .send(httpErrorBody(message, code, extra));
}

/** The HTTP status of an error code, when nothing more specific is known. */
const STATUS_OF: Record<ErrorCode, number> = {
  BAD_USER_INPUT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  RATE_LIMITED: 429,
  INTERNAL_SERVER_ERROR: 500,
};

/** Seconds until a rate-limited client may retry: the error's `retryAfter`, else the `retry-after` header. */
function retryAfterOf(error: FastifyError, reply: FastifyReply): number | undefined {
  const candidates = [(error as { retryAfter?: unknown }).retryAfter, reply.getHeader('retry-after')];
  for (const candidate of candidates) {
    const seconds = Number(candidate);
    if (candidate !== undefined && candidate !== '' && Number.isFinite(seconds) && seconds >= 0) {
      return Math.ceil(seconds);
    }
  }
  return undefined;
}

/**
 * Failures outside GraphQL (hooks, body parsing, routes of their own) answer with a GraphQL error body, a code
 * from the vocabulary and the right HTTP status; unknown paths are NOT_FOUND; nothing internal leaks. An
 * AivaError keeps its public extensions (`field`, ...) and its `extensions.http` status and headers when set
 * (a bad access token: 401 with `www-authenticate`).
 */
export function installHttpErrorHandlers(
  app: FastifyInstance,
  options: {
    bodyLimit: number;
    logger?: Logger;
    /**
     * Errors this app answers its own way, asked first: a reply, or undefined for the common answer. (One handler
     * for the scope: Fastify warns when a scope's error handler is set twice.)
     */
    answerFirst?: (error: FastifyError, reply: FastifyReply) => FastifyReply | undefined;
  },
): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const answered = options.answerFirst?.(error, reply);
    if (answered) return answered;
    if (error instanceof AivaError) {
      const {
        code: _code,
        http,
        ...extensions
      } = error.extensions as Record<string, unknown> & {
        http?: { status?: number; headers?: Map<string, string> };
      };
      for (const [name, value] of http?.headers ?? []) reply.header(name, value);
      return sendHttpError(
        reply,
        http?.status ?? STATUS_OF[error.code],
        error.message,
        error.code,
        extensions,
      );
    }
    const status = error.statusCode ?? 500;
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413) {
      return sendHttpError(
        reply,
        413,
        `Request body is larger than the limit of ${options.bodyLimit} bytes`,
        'BAD_USER_INPUT',
      );
    }
    if (status === 429) {
      const retryAfter = retryAfterOf(error, reply);
      return sendHttpError(
        reply,
        429,
        error.message || 'Too many requests',
        'RATE_LIMITED',
        retryAfter === undefined ? {} : { retryAfter },
      );
    }
    if (status >= 400 && status < 500) {
      const message =
        error instanceof SyntaxError || /JSON/i.test(error.message) ? 'Malformed JSON body' : error.message;
      return sendHttpError(reply, status, message, 'BAD_USER_INPUT');
    }
    (options.logger ?? request.log).error({ err: error, url: request.url.split('?')[0] }, 'unhandled error');
    return sendHttpError(reply, 500, 'Internal server error', 'INTERNAL_SERVER_ERROR');
  });
  app.setNotFoundHandler((request, reply) =>
    sendHttpError(reply, 404, `No route for ${request.method} ${request.url.split('?')[0]}`, 'NOT_FOUND'),
  );
}
