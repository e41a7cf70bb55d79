import {
  heartbeatSchema,
  type InstanceList,
  type Logger,
  MAX_ROUTING_WAIT_SECONDS,
  parseInput,
  REGISTRY_API,
  type RegistrationAccepted,
  type ReportAccepted,
  type RoutingTable,
  registrationSchema,
  runReadinessChecks,
  sendHttpError,
  serviceNameSchema,
  trafficReportSchema,
} from '@aiva/shared';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { checkCredential, registryBearer } from './credentials.js';
import type { RegistrySettings } from './defaults.js';
import type { RegistryMetrics } from './metrics.js';
import type { Prober } from './probes.js';
import { InstanceIdTakenError, type Registry } from './registry.js';
import { buildStatus, type StatusContext } from './status.js';
import type { RegistryStore } from './store.js';

export interface RegistryApiDeps {
  registry: Registry;
  store: RegistryStore;
  prober: Prober;
  metrics: RegistryMetrics;
  settings: RegistrySettings;
  /** REGISTRY_SECRET; unset: every write is refused. */
  secret: string | undefined;
  status: StatusContext;
  logger: Logger;
}

/** The service a report comes from (its credential is checked against it). */
export const REPORTER_SERVICE_HEADER = 'x-aiva-service';

const instanceParams = z.object({ id: z.string().min(1).max(200) });
const instancesQuery = z.object({ service: serviceNameSchema.optional() });
const routingQuery = z.object({ wait: z.coerce.number().min(0).optional() });

/**
 * The registry API (`REGISTRY_API` of the protocol) and the orchestrator's `/health`, `/ready` and `/metrics`.
 * Reads are open; writes need the registering (or reporting) service's registry credential as a bearer token.
 * Every body is validated with the protocol's schemas.
 */
export function registerRegistryApi(app: FastifyInstance, deps: RegistryApiDeps): void {
  const { registry, settings } = deps;
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJsonBody);
  const waits = new Set<() => void>();
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    for (const release of waits) release();
  });

  /** Refuses the write unless the request carries `service`'s credential. True when it may go ahead. */
  function authorize(request: FastifyRequest, reply: FastifyReply, service: string): boolean {
    const verdict = checkCredential({
      secret: deps.secret,
      authorization: request.headers.authorization,
      service,
      otherServices: [...registry.services(), 'gateway'],
    });
    if (verdict.ok) return true;
    if (verdict.status === 401) reply.header('www-authenticate', 'Bearer');
    sendHttpError(reply, verdict.status, verdict.message, verdict.code);
    return false;
  }

  /** No credential at all: refused before the body is even looked at. */
  function credentialMissing(request: FastifyRequest, reply: FastifyReply): boolean {
    if (deps.secret && registryBearer(request.headers.authorization)) return false;
    return !authorize(request, reply, '');
  }

  app.post(REGISTRY_API.instances, async (request, reply) => {
    if (credentialMissing(request, reply)) return reply;
    const registration = parseInput(registrationSchema, request.body, 'body');
    if (!authorize(request, reply, registration.service)) return reply;
    try {
      const view = await registry.register(registration);
      const accepted: RegistrationAccepted = {
        instanceId: view.instanceId,
        heartbeatIntervalMs: settings.heartbeatIntervalMs,
        ttlMs: settings.instanceTtlMs,
      };
      return reply.code(201).send(accepted);
    } catch (error) {
      if (error instanceof InstanceIdTakenError) return sendHttpError(reply, 409, error.message, 'CONFLICT');
      throw error;
    }
  });

  app.put('/v1/instances/:id/heartbeat', async (request, reply) => {
    if (credentialMissing(request, reply)) return reply;
    const { id } = parseInput(instanceParams, request.params, 'id');
    const heartbeat = parseInput(heartbeatSchema, request.body ?? {}, 'body');
    const record = await registry.find(id);
    if (!record) return sendHttpError(reply, 404, `Unknown instance ${id}: register again`, 'NOT_FOUND');
    if (!authorize(request, reply, record.service)) return reply;
    if (!(await registry.heartbeat(id, heartbeat))) {
      return sendHttpError(reply, 404, `Unknown instance ${id}: register again`, 'NOT_FOUND');
    }
    return reply.code(204).send();
  });

  app.delete('/v1/instances/:id', async (request, reply) => {
    if (credentialMissing(request, reply)) return reply;
    const { id } = parseInput(instanceParams, request.params, 'id');
    const record = await registry.find(id);
    if (!record) return sendHttpError(reply, 404, `Unknown instance ${id}`, 'NOT_FOUND');
    if (!authorize(request, reply, record.service)) return reply;
    await registry.deregister(id, 'deregistered');
    return reply.code(204).send();
  });

  app.get(REGISTRY_API.instances, async (request) => {
    const { service } = parseInput(instancesQuery, request.query, 'query');
    const body: InstanceList = { instances: registry.list(service === undefined ? {} : { service }) };
    return body;
  });

  app.get(REGISTRY_API.routing, async (request, reply) => {
    const { wait = 0 } = parseInput(routingQuery, request.query, 'query');
    const known = etagsOf(request.headers['if-none-match']);
    let table = registry.table();
    if (known.has(table.etag) && wait > 0 && !closing) {
      table = await changedTable(
        registry,
        known,
        Math.min(wait, MAX_ROUTING_WAIT_SECONDS) * 1000,
        reply,
        waits,
      );
    }
    reply.header('etag', `"${table.etag}"`).header('cache-control', 'no-cache');
    if (known.has(table.etag)) return reply.code(304).send();
    return table;
  });

  app.get(REGISTRY_API.supergraph, async (request, reply) => {
    const served = registry.supergraph();
    if (!served) return sendHttpError(reply, 503, 'No supergraph has been composed yet', 'NOT_FOUND');
    reply
      .header('etag', `"${served.hash}"`)
      .header('x-supergraph-hash', served.hash)
      .header('cache-control', 'no-cache');
    if (etagsOf(request.headers['if-none-match']).has(served.hash)) return reply.code(304).send();
    return reply.type('text/plain; charset=utf-8').send(served.sdl);
  });

  app.post(REGISTRY_API.reports, async (request, reply) => {
    if (credentialMissing(request, reply)) return reply;
    const reporterService = parseInput(
      serviceNameSchema,
      request.headers[REPORTER_SERVICE_HEADER],
      REPORTER_SERVICE_HEADER,
    );
    const report = parseInput(trafficReportSchema, request.body, 'body');
    if (!authorize(request, reply, reporterService)) return reply;
    const windowSeconds = report.windowSeconds ?? settings.heartbeatIntervalMs / 1000;
    const outcome = await registry.applyReport(report, windowSeconds);
    for (const id of outcome.probe) deps.prober.probeNow(id);
    const body: ReportAccepted = { accepted: outcome.accepted, unknown: outcome.unknown };
    return body;
  });

  app.get(REGISTRY_API.status, async (_request, reply) =>
    reply.header('cache-control', 'no-store').send(buildStatus(deps.status)),
  );

  app.get('/health', async () => ({ status: 'ok', service: 'orchestrator' }));
  app.get('/ready', async (_request, reply) => {
    const report = await runReadinessChecks([{ name: 'store', check: () => deps.store.ping() }], {
      onFailure: (check, error) => deps.logger.warn({ check, err: (error as Error).message }, 'not ready'),
    });
    return reply
      .code(report.ready ? 200 : 503)
      .send({ status: report.ready ? 'ready' : 'not_ready', service: 'orchestrator', checks: report.checks });
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(deps.metrics.contentType).send(await deps.metrics.render()),
  );
}

/**
 * Waits until the routing table's etag is not one of `known`, `timeoutMs` passes, the client goes away or the
 * server closes; resolves with the table then.
 */
function changedTable(
  registry: Registry,
  known: ReadonlySet<string>,
  timeoutMs: number,
  reply: FastifyReply,
  waits: Set<() => void>,
): Promise<RoutingTable> {
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      unsubscribe();
      waits.delete(finish);
      reply.raw.off('close', finish);
      resolve(registry.table());
    };
    const timer = setTimeout(finish, timeoutMs);
    const unsubscribe = registry.onChange(() => {
      if (!known.has(registry.table().etag)) finish();
    });
    waits.add(finish);
    reply.raw.once('close', finish);
  });
}

/** The entity tags of an `If-None-Match` header (quoted or not, weak or strong). */
function etagsOf(header: string | undefined): Set<string> {
  if (!header) return new Set();
  return new Set(
    header
      .split(',')
      .map((tag) => tag.trim().replace(/^W\//, '').replace(/^"|"$/g, ''))
      .filter(Boolean),
  );
}

/** JSON bodies, where an empty body counts as none (`curl -X PUT .../heartbeat` with a JSON content type). */
function parseJsonBody(
  _request: FastifyRequest,
  body: string,
  done: (error: Error | null, value?: unknown) => void,
) {
  if (body.trim() === '') return done(null, undefined);
  try {
    done(null, JSON.parse(body));
  } catch {
    done(Object.assign(new Error('Malformed JSON body'), { statusCode: 400 }));
  }
}
