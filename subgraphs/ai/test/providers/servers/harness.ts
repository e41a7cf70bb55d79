import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request a fake provider received, kept for assertions. */
export interface RecordedRequest {
  method: string;
  /** The path without the query. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** The request body as JSON (throws when it is not). */
export function jsonOf(request: RecordedRequest): Record<string, unknown> {
  return JSON.parse(request.body.toString('utf8')) as Record<string, unknown>;
}

/**
 * What the next requests get instead of a normal answer:
 * - `status`: that HTTP status with the provider's error body (and `Retry-After` when given);
 * - `hang`: nothing at all, the connection stays open until the client gives up;
 * - `break-stream`: a streaming route sends its first delta, then the connection is cut;
 * - `stall-stream`: a streaming route sends its first delta, then nothing more (the connection stays open).
 */
export type Fault =
  | { kind: 'status'; status: number; retryAfter?: string }
  | { kind: 'hang' }
  | { kind: 'break-stream' }
  | { kind: 'stall-stream' };

/** Context a route answers with. */
export interface RouteContext {
  /** What the route does to its stream after the first delta: cut the connection, or go silent. */
  afterFirstDelta: 'continue' | 'break' | 'stall';
}

/** A route: answers a request it matched, in the provider's wire format. */
export type Route = (
  request: RecordedRequest,
  response: ServerResponse,
  context: RouteContext,
) => void | Promise<void>;

export interface RouteEntry {
  method: string;
  /** Matched against the path (without the query). */
  path: RegExp;
  handle: Route;
}

/** The provider's JSON error body for a status (each provider has its own shape). */
export type ErrorBody = (status: number, request: RecordedRequest) => unknown;

/**
 * A real HTTP server on 127.0.0.1, port 0, with a provider's routes and fault injection: tell it to answer the
 * next N requests with a status, to hang, or to break a stream. Records every request.
 */
export class FakeProviderServer {
  readonly requests: RecordedRequest[] = [];
  private readonly faults: Fault[] = [];
  private server: Server | undefined;
  private baseUrl = '';

  constructor(
    private readonly routes: RouteEntry[],
    private readonly errorBody: ErrorBody,
  ) {}

  /** `http://127.0.0.1:<port>`. */
  get url(): string {
    if (!this.baseUrl) throw new Error('the fake provider server is not started');
    return this.baseUrl;
  }

  /** Requests to paths matching the pattern (all of them without one). */
  requestsTo(path?: RegExp): RecordedRequest[] {
    return path ? this.requests.filter((r) => path.test(r.path)) : this.requests;
  }

  /** Forgets recorded requests and pending faults (between tests). */
  reset(): this {
    this.requests.length = 0;
    this.faults.length = 0;
    return this;
  }

  /** The next `count` requests answer with HTTP `status` (with `Retry-After: retryAfter` when given). */
  failNext(count: number, status: number, retryAfter?: string): this {
    for (let i = 0; i < count; i++) {
      this.faults.push(
        retryAfter === undefined ? { kind: 'status', status } : { kind: 'status', status, retryAfter },
      );
    }
    return this;
  }

  /** The next `count` requests never get an answer. */
  hangNext(count: number): this {
    for (let i = 0; i < count; i++) this.faults.push({ kind: 'hang' });
    return this;
  }

  /** The next `count` streamed answers go silent after their first delta. */
  stallNextStream(count: number): this {
    for (let i = 0; i < count; i++) this.faults.push({ kind: 'stall-stream' });
    return this;
  }

  /** The next `count` streamed answers are cut after their first delta. */
  breakNextStream(count: number): this {
    for (let i = 0; i < count; i++) this.faults.push({ kind: 'break-stream' });
    return this;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://fake');
        const request: RecordedRequest = {
          method: req.method ?? 'GET',
          path: url.pathname,
          query: url.searchParams,
          headers: req.headers,
          body: Buffer.concat(chunks),
        };
        this.requests.push(request);
        void this.answer(request, res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  /** Closes the server and every connection, hanging ones included. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async answer(request: RecordedRequest, response: ServerResponse): Promise<void> {
    const route = this.routes.find((r) => r.method === request.method && r.path.test(request.path));
    if (!route) {
      sendJson(response, 404, this.errorBody(404, request));
      return;
    }
    const fault = this.faults.shift();
    if (fault?.kind === 'hang') return;
    if (fault?.kind === 'status') {
      const headers: Record<string, string> =
        fault.retryAfter === undefined ? {} : { 'retry-after': fault.retryAfter };
      sendJson(response, fault.status, this.errorBody(fault.status, request), headers);
      return;
    }
    try {
      const afterFirstDelta =
        fault?.kind === 'break-stream' ? 'break' : fault?.kind === 'stall-stream' ? 'stall' : 'continue';
      await route.handle(request, response, { afterFirstDelta });
    } catch (error) {
      if (!response.headersSent) sendJson(response, 500, { error: { message: String(error) } });
    }
  }
}

/** Answers with a JSON body. */
export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
}

/** Answers with bytes of a media type. */
export function sendBytes(response: ServerResponse, mimeType: string, bytes: Uint8Array): void {
  response.writeHead(200, { 'content-type': mimeType, 'content-length': String(bytes.length) });
  response.end(Buffer.from(bytes));
}

/** Where a fake stream stops early: after the event of `index`, cut (`break`) or silent (`stall`). */
export interface StreamStop {
  index: number;
  how: 'break' | 'stall';
}

/** The stop of a stream whose first delta is the event at `firstDeltaIndex`, per the route context. */
export function stopOf(context: RouteContext, firstDeltaIndex: number): StreamStop | undefined {
  return context.afterFirstDelta === 'continue'
    ? undefined
    : { index: firstDeltaIndex, how: context.afterFirstDelta };
}

/**
 * Sends server-sent events, one `data:` line each (with `event:` when named). With `stop`, the stream ends
 * early after the event of that index: the connection destroyed, as a dropped upstream would be, or left
 * open with nothing more sent, as a stalled one would be.
 */
export async function sendSse(
  response: ServerResponse,
  events: Array<{ event?: string; data: string }>,
  stop?: StreamStop,
): Promise<void> {
  response.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  for (const [index, event] of events.entries()) {
    const named = event.event ? `event: ${event.event}\n` : '';
    await new Promise<void>((resolve) => response.write(`${named}data: ${event.data}\n\n`, () => resolve()));
    if (index === stop?.index) {
      if (stop.how === 'break') response.socket?.destroy();
      return;
    }
  }
  response.end();
}

/** Bytes that start like a PNG file (the SDK sniffs image types from their signature). */
export const PNG_BYTES = new Uint8Array([
  0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8,
]);

/** Bytes that start like an MP3 file with an ID3 tag. */
export const MP3_BYTES = new Uint8Array([0x49, 0x44, 0x33, 0x04, 0x00, 0x00, 0, 0, 0, 0, 9, 8, 7, 6, 5, 4]);

/** A deterministic vector for a text, so tests can tell which text a vector belongs to. */
export function vectorOf(text: string, dimensions: number): number[] {
  return Array.from({ length: dimensions }, (_, i) => ((text.length + i) % 7) / 10);
}
