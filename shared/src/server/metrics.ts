import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** Distinct operation names kept as label values; more than this are counted as `other` (bounded cardinality). */
const MAX_OPERATION_LABELS = 200;
const OPERATION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export interface ServiceMetrics {
  registry: Registry;
  /** Apollo plugin recording requests, latency per operation and errors per code. */
  apolloPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext>;
  /** Counts a request whose time budget ran out (`aiva_deadline_exceeded_total{stage}`). */
  deadlineExceeded(stage: 'refused' | 'abandoned' | 'cut_off'): void;
  /** Prometheus text exposition. */
  render(): Promise<string>;
  contentType: string;
}

/**
 * Metrics of one service, in a registry of its own (several services may share one process).
 * Names: aiva_graphql_requests_total, aiva_graphql_request_duration_seconds, aiva_graphql_errors_total,
 * aiva_deadline_exceeded_total, plus Node's default process metrics (and the dependency metrics the server kit
 * adds: aiva_dependency_up, aiva_degraded_requests_total).
 */
export function createServiceMetrics(service: string): ServiceMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'aiva_graphql_requests_total',
    help: 'GraphQL operations handled, by operation name and outcome',
    labelNames: ['operation', 'outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'aiva_graphql_request_duration_seconds',
    help: 'GraphQL operation latency in seconds, by operation name',
    labelNames: ['operation'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const errors = new Counter({
    name: 'aiva_graphql_errors_total',
    help: 'GraphQL errors returned, by error code',
    labelNames: ['code'],
    registers: [registry],
  });
  const deadlines = new Counter({
    name: 'aiva_deadline_exceeded_total',
    help:
      'Requests whose time budget ran out: refused before execution, abandoned during it (fields stopped), or ' +
      'cut off (answered with DEADLINE_EXCEEDED alone)',
    labelNames: ['stage'],
    registers: [registry],
  });
  const seenOperations = new Set<string>();

  function operationLabel(name: string | null | undefined): string {
    if (!name || !OPERATION_NAME.test(name)) return 'anonymous';
    if (seenOperations.has(name)) return name;
    if (seenOperations.size >= MAX_OPERATION_LABELS) return 'other';
    seenOperations.add(name);
    return name;
  }

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    deadlineExceeded: (stage) => deadlines.inc({ stage }),
    apolloPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
      return {
        async requestDidStart() {
          const stopTimer = process.hrtime.bigint();
          return {
            async willSendResponse(ctx) {
              const operation = operationLabel(ctx.operationName ?? ctx.request.operationName);
              const elapsed = Number(process.hrtime.bigint() - stopTimer) / 1e9;
              const body = ctx.response.body;
              const errorList =
                body.kind === 'single' ? (body.singleResult.errors ?? []) : (body.initialResult.errors ?? []);
              duration.observe({ operation }, elapsed);
              requests.inc({ operation, outcome: errorList.length > 0 ? 'error' : 'success' });
              for (const error of errorList) {
                errors.inc({ code: String(error.extensions?.code ?? 'INTERNAL_SERVER_ERROR') });
              }
            },
          };
        },
      };
    },
  };
}
