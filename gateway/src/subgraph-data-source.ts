import type { RequestContext } from '@aiva/shared';
import { RemoteGraphQLDataSource } from '@apollo/gateway';
import { GraphQLError } from 'graphql';

type Fetcher = NonNullable<RemoteGraphQLDataSource['fetcher']>;

/**
 * Node's fetch (undici) keeps connections to each subgraph alive and reuses them across requests; each call is
 * bounded by `timeoutMs`.
 */
export function keepAliveFetcher(timeoutMs: number): Fetcher {
  return ((url: string, init: RequestInit) =>
    fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) })) as unknown as Fetcher;
}

/**
 * Passes the caller's `authorization` (subgraphs verify it again), the request id and the client's address on
 * to subgraphs. `x-forwarded-for` is set, never relayed: it is the address the gateway determined
 * (`request.ip`, which believes a client's X-Forwarded-For only from TRUST_PROXY), so subgraphs that trust
 * the gateway can rate-limit per client.
 */
export class SubgraphDataSource extends RemoteGraphQLDataSource<RequestContext> {
  /** The subgraph's name in the supergraph. */
  readonly name: string;

  constructor(config: { name: string; url: string; fetcher: Fetcher }) {
    super({ url: config.url, fetcher: config.fetcher });
    this.name = config.name;
  }

  override willSendRequest({
    request,
    context,
  }: Parameters<NonNullable<RemoteGraphQLDataSource<RequestContext>['willSendRequest']>>[0]) {
    const headers = request.http?.headers;
    if (!headers || !context) return;
    if (context.authorization) headers.set('authorization', context.authorization);
    if (context.requestId) headers.set('x-request-id', context.requestId);
    if (context.ip) headers.set('x-forwarded-for', context.ip);
    else headers.delete('x-forwarded-for');
  }

  /**
   * A subgraph that cannot be reached (refused, reset, timed out) becomes an error naming the subgraph, without
   * addresses or low-level causes; errors carried by a subgraph's HTTP response keep the default handling.
   */
  override didEncounterError(
    ...args: Parameters<RemoteGraphQLDataSource<RequestContext>['didEncounterError']>
  ): void {
    const [, , fetchResponse] = args;
    if (!fetchResponse) {
      throw new GraphQLError(`The ${this.name} service is unavailable`, {
        extensions: { code: 'INTERNAL_SERVER_ERROR', serviceName: this.name },
      });
    }
    super.didEncounterError(...args);
  }
}
