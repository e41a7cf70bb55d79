import { z } from 'zod';
import { DEFAULT_SUBSCRIBE_OPTIONS, type SubscribeOptions } from './bus.js';
import { eventCatalog, isEventType } from './catalog.js';
import type { AivaEvent } from './event.js';

// Validation and retry rules shared by the bus adapters (memory and NATS): the envelope, then `data` against
// the catalog; maxDeliver and backoff.

const envelopeSchema = z.object({
  id: z.uuid(),
  type: z.string().min(1),
  occurredAt: z.iso.datetime({ offset: true }),
  source: z.string().min(1),
  data: z.unknown(),
});

/** Describes zod issues by path and message only: event data never ends up in an error or a log line. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

/**
 * Checks an envelope and its `data` against the event catalog and returns the normalised event.
 * Throws a plain Error naming the event type and the zod issues (events are internal, not user input).
 */
export function validateEvent(value: unknown): AivaEvent {
  const envelope = envelopeSchema.safeParse(value);
  const typeName =
    typeof (value as { type?: unknown } | null)?.type === 'string'
      ? (value as { type: string }).type
      : '(no type)';
  if (!envelope.success) {
    throw new Error(`Invalid event envelope for ${typeName}: ${describeIssues(envelope.error)}`);
  }
  const { type } = envelope.data;
  if (!isEventType(type)) throw new Error(`Unknown event type ${type}: not in the event catalog`);
  const data = eventCatalog[type].safeParse(envelope.data.data);
  if (!data.success) throw new Error(`Invalid event ${type}: data.${describeIssues(data.error)}`);
  return { ...envelope.data, type, data: data.data } as AivaEvent;
}

/** Checks the arguments of `EventBus.subscribe`: a consumer name and a type of the event catalog. */
export function assertSubscribable(consumer: string, type: string): void {
  if (!consumer) throw new Error('A consumer name is required');
  if (!isEventType(type)) throw new Error(`Unknown event type ${String(type)}: not in the event catalog`);
}

/** maxDeliver and backoff with defaults applied and sanity-checked. */
export function resolveSubscribeOptions(options: SubscribeOptions = {}): Required<SubscribeOptions> {
  const maxDeliver = options.maxDeliver ?? DEFAULT_SUBSCRIBE_OPTIONS.maxDeliver;
  const backoffMs = options.backoffMs?.length ? options.backoffMs : DEFAULT_SUBSCRIBE_OPTIONS.backoffMs;
  if (!Number.isInteger(maxDeliver) || maxDeliver < 1)
    throw new RangeError('maxDeliver must be an integer >= 1');
  if (backoffMs.some((ms) => !Number.isFinite(ms) || ms < 0)) throw new RangeError('backoffMs must be >= 0');
  return { maxDeliver, backoffMs };
}

/** Delay before redelivery after failed delivery number `delivery` (1-based); the last value repeats. */
export function backoffFor(backoffMs: readonly number[], delivery: number): number {
  return backoffMs[Math.min(delivery, backoffMs.length) - 1] ?? 0;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
