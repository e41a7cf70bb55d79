import { createHash } from 'node:crypto';
import type { Logger } from '@aiva/shared';
import { operationFromDocument } from '@apollo/federation-internals';
import type { ApolloGateway } from '@apollo/gateway';
import type { QueryPlan } from '@apollo/query-planner';
import { InMemoryLRUCache, type KeyValueCache } from '@apollo/utils.keyvaluecache';
import { parse } from 'graphql';
import type { StoredOperation } from './operations.js';

/**
 * The gateway's query plan cache, sized in MiB (QUERY_PLAN_CACHE_MIB) by the plans' JSON size, as
 * @apollo/gateway sizes its own.
 */
export function createQueryPlanCache(maxMiB: number): InMemoryLRUCache<QueryPlan> {
  return new InMemoryLRUCache<QueryPlan>({
    maxSize: maxMiB * 2 ** 20,
    sizeCalculation: (plan) => Buffer.byteLength(JSON.stringify(plan), 'utf8'),
  });
}

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/**
 * The keys @apollo/gateway looks a plan up by: the sha-256 of the document as sent (Apollo Server's
 * `queryHash`), hashed again with the operation name when the request names it. A client may or may not send
 * `operationName` for a document with one operation, so both keys are warmed.
 */
export function queryPlanKeys(document: string, operationName: string): string[] {
  const queryHash = sha256(document);
  return [createHash('sha256').update(queryHash).update(operationName).digest('hex'), queryHash];
}

/** What the gateway exposes of its planner (`__testing()`), the one that plans its requests. */
type PlannerOf = (gateway: ApolloGateway) =>
  | {
      buildQueryPlan(operation: unknown, options?: Record<string, unknown>): QueryPlan;
      supergraph: { apiSchema(): unknown };
    }
  | undefined;

const plannerOf: PlannerOf = (gateway) =>
  (gateway as unknown as { __testing?: () => { queryPlanner?: ReturnType<PlannerOf> } }).__testing?.()
    .queryPlanner;

/**
 * Plans the stored operations (`operations/` folders) with the gateway's own planner whenever it loads a
 * supergraph, into its plan cache: the first request of each pays no planning. An operation the supergraph no
 * longer serves is skipped (one warning line naming it). Returns how many operations were planned.
 */
export function warmQueryPlans(options: {
  gateway: ApolloGateway;
  cache: KeyValueCache<QueryPlan>;
  operations: StoredOperation[];
  logger: Logger;
}): Promise<number> {
  const { gateway, cache, operations, logger } = options;
  const planner = plannerOf(gateway);
  if (!planner) {
    logger.warn('query plans not warmed: this @apollo/gateway does not expose its planner');
    return Promise.resolve(0);
  }
  const apiSchema = planner.supergraph.apiSchema();
  const writes: Promise<void>[] = [];
  let planned = 0;
  for (const stored of operations) {
    if (stored.kind === 'subscription') continue;
    try {
      const operation = operationFromDocument(apiSchema as never, parse(stored.document), {
        operationName: stored.name,
      });
      const plan = planner.buildQueryPlan(operation, {
        recursiveSelectionsLimitDisabled: false,
        nonLocalSelectionsLimitDisabled: false,
      });
      for (const key of queryPlanKeys(stored.document, stored.name)) writes.push(cache.set(key, plan));
      planned++;
    } catch (error) {
      logger.warn(
        { operation: stored.name, file: stored.file, err: (error as Error).message },
        'stored operation not planned: the supergraph does not serve it',
      );
    }
  }
  return Promise.all(writes).then(() => planned);
}
