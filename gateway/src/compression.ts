import compress from '@fastify/compress';
import type { FastifyInstance } from 'fastify';

/**
 * Route config of routes whose responses pass through exactly as their upstream sent them (the service routes:
 * streamed bodies and server-sent events, already encoded or not as the service chose): never compressed here.
 */
export const PASS_THROUGH = { passThrough: true } as const;

/** What is worth compressing: the gateway's JSON (GraphQL answers, error bodies, `/ready`) and `/metrics`. */
const COMPRESSIBLE = /^(?:application\/(?:graphql-response\+)?json|text\/plain)(?:;|$)/;

/**
 * Response compression, negotiated per request: `br` or `gzip` (the client's `accept-encoding` decides, `br`
 * first on a tie), for compressible responses of at least `thresholdBytes` (0 turns compression off). Below the
 * threshold, without an `accept-encoding` that names one of them, for other media types (`text/event-stream`
 * included) and on PASS_THROUGH routes, responses are sent as they are. Request bodies are never decompressed:
 * a compressed body is refused as before. Register it before any route exists.
 */
export async function registerCompression(
  app: FastifyInstance,
  options: { thresholdBytes: number },
): Promise<void> {
  if (options.thresholdBytes <= 0) return;
  // Runs before the plugin's own onRoute hook (added after it), so the plugin leaves these routes alone.
  app.addHook('onRoute', (route) => {
    if ((route.config as { passThrough?: boolean } | undefined)?.passThrough) route.compress = false;
  });
  await app.register(compress, {
    encodings: ['br', 'gzip'],
    threshold: options.thresholdBytes,
    customTypes: COMPRESSIBLE,
    globalDecompression: false,
  });
}
