import cors from '@fastify/cors';
import helmet, { type FastifyHelmetOptions } from '@fastify/helmet';
import Fastify, { type FastifyInstance } from 'fastify';

export interface SecurityOptions {
  /** Origins allowed by CORS; `*` allows any; empty allows none (same-origin only). */
  corsOrigins: readonly string[];
}

/**
 * Helmet's settings for every AIVA server. The CSP allows the inline assets of Apollo's landing page only where
 * it is served (development); everything else gets helmet's strict defaults.
 */
export const HELMET_OPTIONS: FastifyHelmetOptions = {
  // GraphQL responses are JSON; a strict CSP protects any HTML served by mistake.
  contentSecurityPolicy: {
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'", "'unsafe-inline'", 'https://embeddable-sandbox.cdn.apollographql.com'],
      styleSrc: ["'self'", "'unsafe-inline'", 'https://fonts.googleapis.com'],
      imgSrc: ["'self'", 'data:', 'https://apollo-server-landing-page.cdn.apollographql.com'],
      frameSrc: ["'self'", 'https://sandbox.embed.apollographql.com'],
      manifestSrc: ["'self'", 'https://apollo-server-landing-page.cdn.apollographql.com'],
    },
  },
  crossOriginEmbedderPolicy: false,
};

/** One response header: its name as helmet spells it, and its value. */
type Header = readonly [name: string, value: string | number | readonly string[]];

let securityHeaders: Promise<readonly Header[]> | undefined;

/**
 * The headers @fastify/helmet sets with HELMET_OPTIONS, asked of @fastify/helmet itself once per process, on a
 * probe server that is closed at once. @fastify/helmet builds helmet's middleware again for every request
 * (parsing the CSP directives each time: 3 % of the gateway's busy time under load); with static options the
 * headers are the same on every response, so they are worked out once.
 */
function helmetHeaders(): Promise<readonly Header[]> {
  securityHeaders ??= (async () => {
    const probe = Fastify({ logger: false });
    const headers: Header[] = [];
    try {
      await probe.register(helmet, HELMET_OPTIONS);
      // Runs after helmet's own onRequest hooks: the response carries helmet's headers only.
      probe.addHook('onRequest', (_request, reply, done) => {
        // As helmet spells them (Node's getRawHeaderNames, missing from the @types/node in use).
        const raw = reply.raw as typeof reply.raw & { getRawHeaderNames?: () => string[] };
        for (const name of raw.getRawHeaderNames?.() ?? raw.getHeaderNames()) {
          const value = raw.getHeader(name);
          if (value !== undefined) headers.push([name, value]);
        }
        done();
      });
      probe.get('/', async () => 'ok');
      await probe.inject({ method: 'GET', url: '/' });
    } finally {
      await probe.close();
    }
    if (headers.length === 0) throw new Error('helmet set no security headers on the probe');
    return headers;
  })();
  // A failed probe is not kept: the next server asks again.
  securityHeaders.catch(() => {
    securityHeaders = undefined;
  });
  return securityHeaders;
}

/**
 * Security headers (helmet's, HELMET_OPTIONS) and CORS. The headers are those @fastify/helmet sets — same names,
 * same values, set on the raw response in an onRequest hook as it does — worked out once (`helmetHeaders`)
 * rather than on each request. Per-route helmet settings and the `reply.helmet()` / `reply.cspNonce` decorators
 * are not offered (no AIVA route uses them).
 */
export async function registerSecurity(app: FastifyInstance, options: SecurityOptions): Promise<void> {
  const headers = await helmetHeaders();
  app.addHook('onRequest', (_request, reply, done) => {
    const raw = reply.raw;
    for (const [name, value] of headers) raw.setHeader(name, value);
    done();
  });
  const origins = options.corsOrigins;
  await app.register(cors, {
    origin: origins.includes('*') ? true : origins.length > 0 ? [...origins] : false,
    credentials: !origins.includes('*'),
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: [
      'content-type',
      'authorization',
      'apollo-require-preflight',
      'x-apollo-operation-name',
      'x-request-id',
      'traceparent',
      'tracestate',
    ],
    maxAge: 600,
  });
}
