import { randomUUID } from 'node:crypto';

/** A request id a client may choose: 1 to 128 characters of letters, digits and `._:-`. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

type HeaderValue = string | string[] | undefined;

/**
 * The id of a request (fastify `genReqId`): the client's `x-request-id` when it is well-formed, else a fresh
 * UUID. A forged id cannot smuggle log lines, markup or megabytes into the logs and the subgraphs' headers.
 */
export function requestIdOf(request: { headers: Record<string, HeaderValue> }): string {
  const header = request.headers['x-request-id'];
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
}

/** W3C Trace Context `traceparent`: version-traceid-parentid-flags in lowercase hex; all-zero ids are invalid. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$/;
const ZEROS = /^0+$/;

/** The `traceparent` header when it is valid (W3C Trace Context level 1), else undefined. */
export function validTraceparent(value: HeaderValue): string | undefined {
  if (typeof value !== 'string' || value.length > 512) return undefined;
  const match = TRACEPARENT.exec(value);
  if (!match) return undefined;
  const [, version, traceId, parentId, rest] = match;
  // Version ff is invalid; version 00 has exactly four fields (later versions may add some after a dash).
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (ZEROS.test(traceId ?? '') || ZEROS.test(parentId ?? '')) return undefined;
  return value;
}

const TRACESTATE_KEY =
  /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$/;
const TRACESTATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/** The `tracestate` header when it is valid (at most 32 members, 512 characters, distinct keys), else undefined. */
export function validTracestate(value: HeaderValue): string | undefined {
  if (typeof value !== 'string' || value.length > 512) return undefined;
  const members = value
    .split(',')
    .map((member) => member.trim())
    .filter((member) => member !== '');
  if (members.length === 0 || members.length > 32) return undefined;
  const keys = new Set<string>();
  for (const member of members) {
    const equals = member.indexOf('=');
    const key = member.slice(0, equals);
    if (equals <= 0 || keys.has(key)) return undefined;
    if (!TRACESTATE_KEY.test(key) || !TRACESTATE_VALUE.test(member.slice(equals + 1))) return undefined;
    keys.add(key);
  }
  return members.join(',');
}

/** The W3C trace context of a request, to pass on to the services it calls. */
export interface TraceContext {
  traceparent?: string;
  /** Only with a valid `traceparent` (a `tracestate` without one is discarded, as the spec says). */
  tracestate?: string;
}

/** The valid trace context headers of a request; invalid ones are dropped, never passed on. */
export function traceContextOf(headers: Record<string, HeaderValue>): TraceContext {
  const traceparent = validTraceparent(headers.traceparent);
  if (!traceparent) return {};
  const tracestate = validTracestate(headers.tracestate);
  return tracestate ? { traceparent, tracestate } : { traceparent };
}
