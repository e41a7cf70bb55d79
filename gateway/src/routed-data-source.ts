import {
  type AttemptResult,
  DEADLINE_HEADER,
  type RequestContext,
  routedCall,
  type ServiceRouter,
  ServiceUnavailableError,
} from '@aiva/shared';
import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLError } from 'graphql';
import { type Dispatcher, request } from 'undici';

export interface RoutedDataSourceOptions {
  /** The subgraph's name in the supergraph (and the service name in the routing table). */
  name: string;
  router: ServiceRouter;
  /** Keep-alive connection pools to the instances. */
  dispatcher: Dispatcher;
  /** Longest wait for one subgraph request, in ms (SUBGRAPH_TIMEOUT_MS); never past the request's budget. */
  timeoutMs: number;
}

type GatewayGraphQLResponse = Awaited<ReturnType<GraphQLDataSource['process']>>;

/** Operations the gateway sends a subgraph: a mutation is never sent twice. */
const MUTATION = /^\s*mutation\b/;

/**
 * No instance of the subgraph answered (none routable, or every attempt failed to connect): its fields fail with a
 * retryable reason, the others are answered.
 */
function unavailable(name: string): GraphQLError {
  return new GraphQLError(`The ${name} service is unavailable`, {
    extensions: { code: 'INTERNAL_SERVER_ERROR', reason: 'SERVICE_UNAVAILABLE', serviceName: name },
  });
}

/** The request's budget ran out before the subgraph answered: its fields fail, the others are answered. */
function outOfTime(name: string): GraphQLError {
  return new GraphQLError(`The ${name} service did not answer within the request's time budget`, {
    extensions: { code: 'INTERNAL_SERVER_ERROR', reason: 'DEADLINE_EXCEEDED', serviceName: name },
  });
}

/**
 * Sends the gateway's subgraph requests to a live instance of the subgraph picked by the router (power of two
 * choices, breakers), over keep-alive pools (undici). Passes the caller's `authorization` (subgraphs verify it
 * again), the request id (the client's when well-formed, else the one the gateway made), the client's valid W3C
 * `traceparent` / `tracestate` and the client's address on. `x-forwarded-for` is set, never relayed: it is the
 * address the gateway determined (`request.ip`, which believes a client's X-Forwarded-For only from TRUST_PROXY). A
 * query that could not reach an instance (refused, reset, the instance shutting down) is sent once more to
 * another one; a mutation never is. A subgraph that cannot be reached becomes an error naming it, without
 * addresses or low-level causes.
 *
 * Deadlines: each request waits at most `timeoutMs` (SUBGRAPH_TIMEOUT_MS) and never past the client request's
 * budget (`context.signal`, GRAPHQL_REQUEST_TIMEOUT_MS): the subgraph is told what is left of it
 * (`x-aiva-deadline-ms`), so it stops the work the gateway will no longer wait for. A subgraph that has not
 * answered when the budget ends fails with `reason: DEADLINE_EXCEEDED` (its fields only: the other subgraphs'
 * fields are answered), without counting against the instance's breaker.
 */
export class RoutedDataSource implements GraphQLDataSource<RequestContext> {
  readonly name: string;
  private readonly router: ServiceRouter;
  private readonly dispatcher: Dispatcher;
  private readonly timeoutMs: number;

  constructor(options: RoutedDataSourceOptions) {
    this.name = options.name;
    this.router = options.router;
    this.dispatcher = options.dispatcher;
    this.timeoutMs = options.timeoutMs;
  }

  async process(options: GraphQLDataSourceProcessOptions<RequestContext>): Promise<GatewayGraphQLResponse> {
    const { request: subgraphRequest } = options;
    const query = subgraphRequest.query;
    if (!query) throw new Error('Missing query');
    // Health checks and schema loads carry no incoming request.
    const context = 'incomingRequestContext' in options ? options.incomingRequestContext.context : undefined;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (context?.authorization) headers.authorization = context.authorization;
    if (context?.requestId) headers['x-request-id'] = context.requestId;
    if (context?.traceparent) headers.traceparent = context.traceparent;
    if (context?.tracestate) headers.tracestate = context.tracestate;
    if (context?.ip) headers['x-forwarded-for'] = context.ip;
    // Health checks and schema loads have no budget: SUBGRAPH_TIMEOUT_MS alone bounds them.
    const deadline = context?.deadline;
    const budget = context?.signal;
    if (deadline !== undefined && deadline <= Date.now()) throw outOfTime(this.name);
    const body = JSON.stringify({
      query,
      ...(subgraphRequest.operationName ? { operationName: subgraphRequest.operationName } : {}),
      ...(subgraphRequest.variables ? { variables: subgraphRequest.variables } : {}),
      ...(subgraphRequest.extensions ? { extensions: subgraphRequest.extensions } : {}),
    });
    let response: GatewayGraphQLResponse | undefined;
    try {
      response = await routedCall(
        this.router,
        this.name,
        {
          retryable: !MUTATION.test(query),
          timeoutMs: this.timeoutMs,
          // The budget's signal aborts at its deadline: an attempt that would not time out before needs no
          // timer of its own.
          ...(budget ? { signal: budget, ...(deadline !== undefined ? { deadline } : {}) } : {}),
        },
        (endpoint, signal) => this.send(endpoint.graphqlUrl, withDeadline(headers, deadline), body, signal),
      );
    } catch (error) {
      if (budget?.aborted) throw outOfTime(this.name);
      if (error instanceof ServiceUnavailableError) throw unavailable(this.name);
      throw error;
    }
    if (!response) throw unavailable(this.name);
    return response;
  }

  private async send(
    url: string,
    headers: Record<string, string>,
    body: string,
    signal: AbortSignal,
  ): Promise<AttemptResult<GatewayGraphQLResponse | undefined>> {
    const response = await request(url, {
      method: 'POST',
      headers,
      body,
      signal,
      dispatcher: this.dispatcher,
    });
    const text = await response.body.text();
    const status = response.statusCode;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const isGraphQL =
      typeof parsed === 'object' && parsed !== null && ('data' in parsed || 'errors' in parsed);
    if (status === 503 && !isGraphQL) {
      // Shutting down or not ready: it did no work, another instance may.
      return { value: undefined, outcome: 'error', refused: true };
    }
    // Not a GraphQL answer (a proxy's error page, garbage): reported as the service being unavailable.
    if (!isGraphQL) return { value: undefined, outcome: 'error' };
    return { value: parsed as GatewayGraphQLResponse, outcome: status >= 500 ? 'error' : 'success' };
  }
}

/** The headers of one attempt: with what is left of the budget (whole ms, at least 1), when there is one. */
function withDeadline(headers: Record<string, string>, deadline: number | undefined): Record<string, string> {
  if (deadline === undefined) return headers;
  return { ...headers, [DEADLINE_HEADER]: String(Math.max(1, Math.floor(deadline - Date.now()))) };
}
