import type { GraphQLFormattedError } from 'graphql';
import { GraphQLError } from 'graphql';

/** The fixed error vocabulary of AIVA. Every error a client sees carries one of these in `extensions.code`. */
export const ERROR_CODES = [
  'BAD_USER_INPUT',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'RATE_LIMITED',
  'INTERNAL_SERVER_ERROR',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorDetails {
  /** The input field at fault, e.g. `email` or `input.email`. */
  field?: string;
  [key: string]: unknown;
}

/**
 * A domain error with a code from the vocabulary. Services throw these; `formatError` passes them to clients
 * as they are. Anything else reaching the client is reported as INTERNAL_SERVER_ERROR without details.
 */
export class AivaError extends GraphQLError {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, { extensions: { ...details, code } });
    this.name = 'AivaError';
    this.code = code;
  }
}

export const badUserInput = (message: string, details?: ErrorDetails) =>
  new AivaError('BAD_USER_INPUT', message, details);
export const unauthenticated = (message = 'Authentication required', details?: ErrorDetails) =>
  new AivaError('UNAUTHENTICATED', message, details);
export const forbidden = (message = 'Not allowed', details?: ErrorDetails) =>
  new AivaError('FORBIDDEN', message, details);
export const notFound = (message: string, details?: ErrorDetails) =>
  new AivaError('NOT_FOUND', message, details);
export const conflict = (message: string, details?: ErrorDetails) =>
  new AivaError('CONFLICT', message, details);
export const rateLimited = (message: string, details?: ErrorDetails) =>
  new AivaError('RATE_LIMITED', message, details);

export function isAivaError(error: unknown): error is AivaError {
  return error instanceof AivaError;
}

/** Apollo's own codes for requests that never reached a resolver, mapped onto the vocabulary. */
const APOLLO_CODE_MAP: Record<string, ErrorCode> = {
  GRAPHQL_PARSE_FAILED: 'BAD_USER_INPUT',
  GRAPHQL_VALIDATION_FAILED: 'BAD_USER_INPUT',
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  BAD_REQUEST: 'BAD_USER_INPUT',
  PERSISTED_QUERY_NOT_FOUND: 'BAD_USER_INPUT',
  PERSISTED_QUERY_NOT_SUPPORTED: 'BAD_USER_INPUT',
  OPERATION_RESOLUTION_FAILURE: 'BAD_USER_INPUT',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
};

const KNOWN = new Set<string>(ERROR_CODES);

/** Keeps only plain, JSON-safe extension values; drops stack traces, exceptions and internals. */
function publicExtensions(extensions: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!extensions) return out;
  for (const [key, value] of Object.entries(extensions)) {
    if (key === 'stacktrace' || key === 'exception' || key === 'originalError') continue;
    if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) out[key] = value;
    else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) out[key] = value;
  }
  return out;
}

export interface FormatErrorOptions {
  /** Called with errors that are reported to the client as INTERNAL_SERVER_ERROR, for logging. */
  onInternalError?: (error: unknown) => void;
}

/**
 * The one error formatter of AIVA (subgraphs and gateway): codes from the vocabulary, messages for people,
 * no stack traces or internals. Errors outside the vocabulary become INTERNAL_SERVER_ERROR with a generic
 * message, and are handed to `onInternalError` for the log.
 */
export function createFormatError(options: FormatErrorOptions = {}) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrap(error);
    const extensions = publicExtensions(formatted.extensions as Record<string, unknown> | undefined);
    if (original instanceof AivaError)
      return { ...formatted, extensions: { ...extensions, code: original.code } };
    const rawCode = String(formatted.extensions?.code ?? '');
    const code = KNOWN.has(rawCode) ? (rawCode as ErrorCode) : APOLLO_CODE_MAP[rawCode];
    if (code && code !== 'INTERNAL_SERVER_ERROR') {
      // Apollo's own code stays visible as `reason` (APQ clients look for PERSISTED_QUERY_NOT_FOUND), unless the
      // error names its own (an operation limit refused in validation: `MAX_DEPTH`, ...).
      const reason =
        rawCode && rawCode !== code && extensions.reason === undefined ? { reason: rawCode } : {};
      return { ...formatted, extensions: { ...extensions, ...reason, code } };
    }
    // A subgraph's error relayed by the gateway (`serviceName` set) was already made public by the subgraph,
    // or by the gateway's data source when the subgraph could not be reached.
    if (code === 'INTERNAL_SERVER_ERROR' && typeof extensions.serviceName === 'string') {
      return { ...formatted, extensions: { ...extensions, code } };
    }
    options.onInternalError?.(original ?? error);
    return {
      message: 'Internal server error',
      ...(formatted.locations ? { locations: formatted.locations } : {}),
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    };
  };
}

function unwrap(error: unknown): unknown {
  let current = error;
  for (let i = 0; i < 5 && current instanceof GraphQLError && current.originalError; i++) {
    current = current.originalError;
  }
  return current;
}
