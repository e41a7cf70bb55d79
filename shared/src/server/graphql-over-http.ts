import type { IncomingHttpHeaders } from 'node:http';
import type { ApolloServerPlugin, BaseContext, HTTPGraphQLRequest } from '@apollo/server';
import type { FastifyRequest } from 'fastify';
import { type GraphQLError, Kind } from 'graphql';
import { AivaError } from '../errors.js';

/**
 * The GraphQL-over-HTTP spec's status codes (https://graphql.github.io/graphql-over-http/draft/) and CSRF
 * prevention, for every AIVA GraphQL server (the gateway's and the subgraphs').
 *
 * Status codes: a GraphQL request whose document cannot run — it does not parse, does not validate (operation
 * limits and disabled introspection included), or its variables do not coerce — is answered according to the
 * media type the client accepts:
 * - `application/graphql-response+json` (what Apollo Client and other current clients prefer): HTTP 400;
 * - `application/json` (legacy clients, a missing `accept`, `*\/*`): HTTP 200 with `errors` and no `data`, as
 *   the spec asks, since such clients (and the proxies between them) cannot tell a GraphQL error from a failure
 *   of the HTTP request otherwise.
 * Faults of the HTTP request itself stay 4xx whatever the client accepts: a body that is not JSON, a missing or
 * mistyped `query`, `variables`, `operationName` or `extensions` (400), a mutation over GET (405), a GET with
 * a content type other than JSON (415), a body too large (413), a bad token (401), a rate limit (429).
 */

/** The GraphQL requests (as handed to Apollo) whose errors are their document's own; see `documentErrorStatus`. */
const documentFailures = new WeakSet<HTTPGraphQLRequest>();

/** graphql-js's variable coercion errors (Apollo's test too): one node, the failing variable's definition. */
function isVariableCoercionError(error: GraphQLError): boolean {
  return error.nodes?.length === 1 && error.nodes[0]?.kind === Kind.VARIABLE_DEFINITION;
}

/**
 * Notes the requests whose document did not parse, did not validate, or whose variables did not coerce, for
 * `graphqlResponseStatus`. (Apollo answers all of them with HTTP 400.)
 */
export function documentErrorStatus<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart({ request }) {
      const http = request.http;
      if (!http) return;
      const failed = () => documentFailures.add(http);
      return {
        async parsingDidStart() {
          return async (error) => {
            if (error) failed();
          };
        },
        async validationDidStart() {
          return async (errors) => {
            if (errors?.length) failed();
          };
        },
        async willSendResponse({ errors, response }) {
          if (
            errors?.length &&
            response.body.kind === 'single' &&
            response.body.singleResult.data === undefined &&
            errors.every(isVariableCoercionError)
          ) {
            failed();
          }
        },
      };
    },
  };
}

/**
 * The HTTP status of Apollo's answer to `httpRequest`: Apollo's own, except that a document error (see
 * `documentErrorStatus`) answered as `application/json` (the media type Apollo negotiated from `accept`) is
 * HTTP 200.
 */
export function graphqlResponseStatus(
  httpRequest: HTTPGraphQLRequest,
  status: number | undefined,
  contentType: string | undefined,
): number {
  if (status === 400 && documentFailures.has(httpRequest) && contentType?.startsWith('application/json')) {
    return 200;
  }
  return status ?? 200;
}

/**
 * Headers a browser only sends after a CORS preflight (they are not CORS-safelisted): Apollo's CSRF prevention
 * headers and the GraphQL-over-HTTP draft's.
 */
export const PREFLIGHT_HEADERS = [
  'apollo-require-preflight',
  'x-apollo-operation-name',
  'graphql-require-preflight',
] as const;

/** The content types a browser may send cross-origin without a preflight (a form, `text/plain`). */
const SIMPLE_CONTENT_TYPES = new Set([
  'application/x-www-form-urlencoded',
  'multipart/form-data',
  'text/plain',
]);

/**
 * Whether a browser must have preflighted this request (or it did not come from a browser): a `content-type`
 * other than the simple ones (`application/json`, or one a form cannot send), or a non-empty preflight header.
 */
export function preflighted(headers: IncomingHttpHeaders): boolean {
  const contentType = headers['content-type'];
  if (contentType !== undefined) {
    const essence = contentType.split(';', 1)[0]?.trim().toLowerCase() ?? '';
    if (!SIMPLE_CONTENT_TYPES.has(essence)) return true;
  }
  return PREFLIGHT_HEADERS.some((name) => {
    const value = headers[name];
    return typeof value === 'string' && value.length > 0;
  });
}

/**
 * Whether a request carries credentials a browser may attach on its own to a cross-site request: cookies, or
 * an `Authorization` header (HTTP basic credentials it remembers). AIVA's servers authenticate with bearer
 * tokens only, which a browser never adds by itself, but any such header makes the request one to guard.
 */
function carriesAmbientCredentials(headers: IncomingHttpHeaders): boolean {
  return headers.cookie !== undefined || headers.authorization !== undefined;
}

const CSRF_MESSAGE = `This request carries credentials but could have been sent cross-site without a CORS preflight: \
send it with content-type: application/json or a non-empty ${PREFLIGHT_HEADERS.join(' or ')} header`;

/**
 * CSRF prevention for `/graphql` (in place of Apollo's, which refuses every simple GET): a request a browser
 * could have sent cross-site without a preflight (see `preflighted`) is served only when it carries no
 * credentials, that is as an anonymous query. A cross-site page can then make a browser run nothing its
 * attacker could not run directly: no credentials ride along, and mutations never run over GET (HTTP 405),
 * while POST needs `content-type: application/json`, which is preflighted. A simple request that does carry
 * cookies or an `Authorization` header is refused (HTTP 400, BAD_USER_INPUT, reason CSRF_PREVENTED) unless
 * it sends a preflight header, as with Apollo's own prevention. Plain GETs of queries, as the GraphQL-over-HTTP
 * spec describes them, work.
 */
export async function csrfPrevention(request: FastifyRequest): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'POST') return;
  if (!carriesAmbientCredentials(request.headers) || preflighted(request.headers)) return;
  throw new AivaError('BAD_USER_INPUT', CSRF_MESSAGE, { reason: 'CSRF_PREVENTED' });
}
