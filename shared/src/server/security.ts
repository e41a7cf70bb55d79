import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';

export interface SecurityOptions {
  /** Origins allowed by CORS; `*` allows any; empty allows none (same-origin only). */
  corsOrigins: readonly string[];
}

/**
 * Security headers (helmet) and CORS. The CSP allows the inline assets of Apollo's landing page only where
 * it is served (development); everything else gets helmet's strict defaults.
 */
export async function registerSecurity(app: FastifyInstance, options: SecurityOptions): Promise<void> {
  await app.register(helmet, {
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
