import { sendHttpError, type TokenCheckHooks, verifiedViewer } from '@aiva/shared';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { followRun, type RunEvent, type RunLog } from './run-log.js';

/** Where replies stream: `GET /ai/streams/<run id>` (through the gateway's public port). */
export const STREAMS_PATH = '/ai/streams';

const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A comment line every this often keeps proxies from closing an idle stream. */
const HEARTBEAT_MS = 15_000;

/** One SSE frame: the sequence number as its id, so a reconnect says where it stopped. */
export function sseFrame(event: RunEvent): string {
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

/** Where a client resumes: the `Last-Event-ID` header (EventSource sends it), else `?lastEventId=`, else 0. */
export function resumeAfter(request: FastifyRequest): number {
  const header = request.headers['last-event-id'];
  const query = (request.query as { lastEventId?: string } | undefined)?.lastEventId;
  const value = Number(typeof header === 'string' ? header : (query ?? 0));
  return Number.isSafeInteger(value) && value > 0 ? value : 0;
}

/**
 * The server-sent events route of replies. Authenticated like `/graphql` (the same bearer token; a bad one is a
 * 401), and only the run's owner may read it (anyone else: 404, so run ids do not leak). It sends what the run has
 * after the client's last event id, then each event as it is appended, and ends after the final one.
 */
export async function registerStreamRoute(
  app: FastifyInstance,
  options: { log: RunLog; tokenCheck: TokenCheckHooks },
): Promise<void> {
  app.route<{ Params: { runId: string } }>({
    method: 'GET',
    url: `${STREAMS_PATH}/:runId`,
    onRequest: options.tokenCheck.onRequest,
    preHandler: options.tokenCheck.preHandler,
    handler: async (request, reply) => {
      const viewer = verifiedViewer(request);
      if (!viewer) return sendHttpError(reply, 401, 'Sign in to read this stream', 'UNAUTHENTICATED');
      const { runId } = request.params;
      const owner = RUN_ID.test(runId) ? await options.log.ownerOf(runId) : null;
      if (!owner || owner !== viewer.userId) return sendHttpError(reply, 404, 'No such stream', 'NOT_FOUND');

      const abort = new AbortController();
      request.raw.on('close', () => abort.abort());
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      res.write(': stream\n\n');
      const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
      try {
        for await (const event of followRun(options.log, runId, resumeAfter(request), abort.signal)) {
          res.write(sseFrame(event));
        }
      } catch (error) {
        request.log.warn({ err: (error as Error).message, runId }, 'reply stream failed');
      } finally {
        clearInterval(heartbeat);
        res.end();
      }
    },
  });
}
