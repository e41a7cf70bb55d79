import type { RequestContext } from '@aiva/shared';
import { RemoteGraphQLDataSource } from '@apollo/gateway';

type Fetcher = NonNullable<RemoteGraphQLDataSource['fetcher']>;


/**
 * Node's fetch (undici) keeps connections to each subgraph alive and reuses them across requests; each call is
 * bounded by `timeoutMs`.
 */
export function keepAliveFetcher(timeoutMs: number): Fetcher {
  return ((url: string, init: RequestInit) =>
    fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs), keepalive: true })) as unknown as Fetcher;
}

/** Passes the caller's `authorization` (subgraphs verify it again) and the request id on to subgraphs. */
export class SubgraphDataSource extends RemoteGraphQLDataSource<RequestContext> {
  override willSendRequest({ request, context }: Parameters<NonNullable<RemoteGraphQLDataSource<RequestContext>['willSendRequest']>>[0]) {
    const headers = request.http?.headers;
    if (!headers || !context) return;
    if (context.authorization) headers.set('authorization', context.authorization);
    if (context.requestId) headers.set('x-request-id', context.requestId);
  }
}
