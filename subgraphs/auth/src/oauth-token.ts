import {
  type GraphQLHttpServer,
  isServiceName,
  type Logger,
  OAUTH_TOKEN_PATH,
  ROLE_SERVICE,
  SERVICE_SUBJECT_PREFIX,
  verifyServiceCredential,
} from '@aiva/shared';
import type { KeyRing } from './signing-keys.js';

// Service tokens for other services (OAuth 2.0 client credentials, RFC 6749 §4.4): a service authenticates with its
// name (client_id) and its credential (client_secret, see @aiva/shared's service-credentials), and gets a
// short-lived access token `{ sub: service:<name>, sid: service, roles: [service] }` signed with auth's own key,
// as auth's own calls to users are. Served on auth's port only: it is not a gateway route, so the public gateway
// never forwards it.

/** Lifetime of a service token (capped at ACCESS_TOKEN_TTL_SECONDS by the key ring). */
export const SERVICE_TOKEN_TTL_SECONDS = 300;
/** The realm of the Basic challenge on a refused client. */
const REALM = 'aiva-services';
const GRANT_TYPE = 'client_credentials';

type HttpApp = GraphQLHttpServer['app'];

export interface OAuthTokenOptions {
  keys: KeyRing;
  /** The secret service credentials derive from (`loadServiceSecret`). Never logged. */
  secret: string;
  logger: Logger;
}

/** A token endpoint answer (RFC 6749 §5.1 / §5.2). */
export interface TokenAnswer {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** The parts of a token request the endpoint looks at. */
export interface TokenRequest {
  /** The Authorization header, if any. */
  authorization: string | undefined;
  /** The parameters: from a form body (duplicates kept) or a JSON object. */
  params: URLSearchParams | Record<string, unknown> | undefined;
  /** For the log line of a refused client. */
  ip?: string;
}

const invalidRequest = (description: string): TokenAnswer => ({
  status: 400,
  body: { error: 'invalid_request', error_description: description },
});

const invalidClient = (): TokenAnswer => ({
  status: 401,
  body: { error: 'invalid_client', error_description: 'Client authentication failed' },
  headers: { 'www-authenticate': `Basic realm="${REALM}"` },
});

/** application/x-www-form-urlencoded decoding of one part of Basic credentials (RFC 6749 §2.3.1). */
function formDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** `client_id` and `client_secret` of an `Authorization: Basic` header; null when malformed. */
function basicCredentials(header: string): { id: string; secret: string } | null {
  const match = /^Basic[ ]+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (!match?.[1]) return null;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const id = formDecode(decoded.slice(0, colon));
  const secret = formDecode(decoded.slice(colon + 1));
  return id === undefined || secret === undefined ? null : { id, secret };
}

/** The request's parameters as single strings; a string naming the problem when one is repeated or not a string. */
function singleParams(params: TokenRequest['params']): Map<string, string> | string {
  const single = new Map<string, string>();
  if (params === undefined) return single;
  const entries: Array<[string, unknown]> =
    params instanceof URLSearchParams ? [...params.entries()] : Object.entries(params);
  for (const [name, value] of entries) {
    if (single.has(name)) return `parameter ${name.slice(0, 40)} is repeated`;
    if (typeof value !== 'string') return `parameter ${name.slice(0, 40)} must be a string`;
    single.set(name, value);
  }
  return single;
}

/**
 * The token endpoint's logic, without HTTP: client authentication (HTTP Basic, or client_id and client_secret in
 * the body; one method only), then the grant type. The secret of a request never reaches the log or the answer.
 */
export async function answerTokenRequest(
  request: TokenRequest,
  options: OAuthTokenOptions,
): Promise<TokenAnswer> {
  const params = singleParams(request.params);
  if (typeof params === 'string') return invalidRequest(params);
  const bodyId = params.get('client_id');
  const bodySecret = params.get('client_secret');
  let client: { id: string; secret: string } | null;
  if (request.authorization !== undefined) {
    if (bodyId !== undefined || bodySecret !== undefined) {
      return invalidRequest('use one client authentication method: HTTP Basic or the request body');
    }
    client = basicCredentials(request.authorization);
  } else if (bodyId !== undefined && bodySecret !== undefined) {
    client = { id: bodyId, secret: bodySecret };
  } else {
    client = null;
  }
  if (!client || !verifyServiceCredential(options.secret, client.id, client.secret)) {
    const clientId = client ? (isServiceName(client.id) ? client.id : '(malformed)') : '(none)';
    options.logger.warn(
      { clientId, ...(request.ip ? { ip: request.ip } : {}) },
      'service token refused: client authentication failed',
    );
    return invalidClient();
  }
  const grantType = params.get('grant_type');
  if (grantType === undefined) return invalidRequest('grant_type is required');
  if (grantType !== GRANT_TYPE) {
    return {
      status: 400,
      body: { error: 'unsupported_grant_type', error_description: 'only client_credentials is supported' },
    };
  }
  const { token, expiresIn } = await options.keys.sign(
    { sub: `${SERVICE_SUBJECT_PREFIX}${client.id}`, sid: 'service', roles: [ROLE_SERVICE] },
    SERVICE_TOKEN_TTL_SECONDS,
  );
  return { status: 200, body: { access_token: token, token_type: 'Bearer', expires_in: expiresIn } };
}

/**
 * `POST /oauth/token` on `app` (in a scope of its own: the form body parser and the OAuth error answers apply to
 * this route only). Bodies: application/x-www-form-urlencoded or JSON. Every answer has `Cache-Control: no-store`.
 */
export async function registerOAuthTokenRoute(app: HttpApp, options: OAuthTokenOptions): Promise<void> {
  await app.register(async (scope) => {
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string' },
      (_request, body, done) => done(null, new URLSearchParams(body as string)),
    );
    // Bodies that cannot be read (malformed JSON, another content type, too large) are OAuth errors here. The
    // route's own error handler: setErrorHandler on this scope would override the app's (a Fastify warning).
    scope.post(
      OAUTH_TOKEN_PATH,
      {
        errorHandler: (error, request, reply) => {
          const status = error.statusCode ?? 500;
          reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
          if (status >= 400 && status < 500) {
            return reply
              .status(status === 413 ? 413 : 400)
              .send({ error: 'invalid_request', error_description: 'the request body cannot be read' });
          }
          options.logger.error({ err: error, url: request.url.split('?')[0] }, 'token endpoint failed');
          return reply.status(500).send({ error: 'server_error' });
        },
      },
      async (request, reply) => {
        const body = request.body;
        const params =
          body instanceof URLSearchParams
            ? body
            : body !== null && typeof body === 'object' && !Array.isArray(body)
              ? (body as Record<string, unknown>)
              : undefined;
        if (body !== undefined && body !== null && params === undefined) {
          reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
          return reply.status(400).send(invalidRequest('the body must be a form or a JSON object').body);
        }
        const answer = await answerTokenRequest(
          { authorization: request.headers.authorization, params, ip: request.ip },
          options,
        );
        reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
        for (const [name, value] of Object.entries(answer.headers ?? {})) reply.header(name, value);
        return reply.status(answer.status).send(answer.body);
      },
    );
  });
}
