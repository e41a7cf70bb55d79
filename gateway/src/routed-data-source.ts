import {
  type AttemptResult,
  DEADLINE_HEADER,
  type RequestContext,
  routedCall,
  type ServiceRouter,
  ServiceUnavailableError,
  untilAborted,
} from '@aiva/shared';
import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLError } from 'graphql';
import { type Dispatcher, request } from 'undici';
import { createInflightDedupe, type InflightDedupe, LeaderAbortedError } from './inflight-dedupe.js';

export interface RoutedDataSourceOptions {
  /** The subgraph's name in the supergraph (and the service name in the routing table). */
  name: string;
  router: ServiceRouter;
  /** Keep-alive connection pools to the instances. */
  dispatcher: Dispatcher;
  /** Longest wait for one subgraph request, in ms (SUBGRAPH_TIMEOUT_MS); never past the request's budget. */
  timeoutMs: number;
  /**
   * Identical query fetches in flight at once share one subgraph request (DEDUPE_SUBGRAPH_FETCHES); default
   * true.
   */
  dedupe?: boolean;
  /** Called when a fetch joins an identical one in flight instead of sending its own. */
  onShared?: () => void;
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
  private readonly inflight: InflightDedupe<SubgraphAnswer> | undefined;
  private readonly onShared: (() => void) | undefined;

  constructor(options: RoutedDataSourceOptions) {
    this.name = options.name;
    this.router = options.router;
    this.dispatcher = options.dispatcher;
    this.timeoutMs = options.timeoutMs;
    this.inflight = (options.dedupe ?? true) ? createInflightDedupe<SubgraphAnswer>() : undefined;
    this.onShared = options.onShared;
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
    const retryable = !MUTATION.test(query);
    const fetchOwn = () => this.fetch(headers, body, { retryable, deadline, budget }).catch(this.ownError);
    if (!retryable || !this.inflight) return parsedAnswer(await fetchOwn());
    // Everything that can change the answer is in the key: the document and variables (the body), and who asks
    // (credentials and address, which subgraphs may limit by). An answer is never shared across identities.
    const key = `${context?.authorization ?? ''}\n${context?.ip ?? ''}\n${body}`;
    let leader = false;
    const shared = this.inflight.run(key, () => {
      leader = true;
      return this.fetch(headers, body, { retryable, deadline, budget });
    });
    if (leader) return parsedAnswer(await shared.catch(this.ownError));
    this.onShared?.();
    try {
      return parsedAnswer(await untilAborted(shared, budget, () => outOfTime(this.name)));
    } catch (error) {
      // The request that led the fetch ran out of budget (or went away) first: this one may still have time.
      if (error instanceof LeaderAbortedError) return parsedAnswer(await fetchOwn());
      throw error;
    }
  }

  /** A fetch's failure as its own caller sees it: its own budget spent is DEADLINE_EXCEEDED. */
  private readonly ownError = (error: unknown): never => {
    throw error instanceof LeaderAbortedError ? outOfTime(this.name) : error;
  };

  /**
   * One subgraph fetch over the router. Failures are the gateway's errors, except the caller's budget running
   * out, which is LeaderAbortedError (a fetch shared with others: they may still have time).
   */
  private async fetch(
    headers: Record<string, string>,
    body: string,
    call: { retryable: boolean; deadline: number | undefined; budget: AbortSignal | undefined },
  ): Promise<SubgraphAnswer> {
    const { deadline, budget } = call;
    let answer: SubgraphAnswer | undefined;
    try {
      answer = await routedCall(
        this.router,
        this.name,
        {
          retryable: call.retryable,
          timeoutMs: this.timeoutMs,
          // The budget's signal aborts at its deadline: an attempt that would not time out before needs no
          // timer of its own.
          ...(budget ? { signal: budget, ...(deadline !== undefined ? { deadline } : {}) } : {}),
        },
        (endpoint, signal) => this.send(endpoint.graphqlUrl, withDeadline(headers, deadline), body, signal),
      );
    } catch (error) {
      if (budget?.aborted) throw new LeaderAbortedError();
      if (error instanceof ServiceUnavailableError) throw unavailable(this.name);
      throw error;
    }
    if (!answer) throw unavailable(this.name);
    return answer;
  }

  private async send(
    url: string,
    headers: Record<string, string>,
    body: string,
    signal: AbortSignal,
  ): Promise<AttemptResult<SubgraphAnswer | undefined>> {
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
    return {
      value: { text, parsed: parsed as GatewayGraphQLResponse, taken: false },
      outcome: status >= 500 ? 'error' : 'success',
    };
  }
}

/**
 * A subgraph's GraphQL answer: parsed once for its first reader; any other reader of a shared fetch parses its
 * own copy of the text, since the gateway's executor writes into the objects it merges.
 */
interface SubgraphAnswer {
  text: string;
  parsed: GatewayGraphQLResponse;
  taken: boolean;
}

/** The answer for one caller (see SubgraphAnswer); a fetch its leader abandoned is out of time for it. */
function parsedAnswer(answer: SubgraphAnswer): GatewayGraphQLResponse {
  if (!answer.taken) {
    answer.taken = true;
    return answer.parsed;
  }
  return JSON.parse(answer.text) as GatewayGraphQLResponse;
}

/** The headers of one attempt: with what is left of the budget (whole ms, at least 1), when there is one. */
function withDeadline(headers: Record<string, string>, deadline: number | undefined): Record<string, string> {
  if (deadline === undefined) return headers;
  return { ...headers, [DEADLINE_HEADER]: String(Math.max(1, Math.floor(deadline - Date.now()))) };
}
