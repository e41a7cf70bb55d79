import { z } from 'zod';
import type { Logger } from '../log.js';
import { DEFAULT_SUBSCRIBE_OPTIONS, type DeadLetter, type SubscribeOptions } from './bus.js';
import { EventValidationError } from './bus-errors.js';
import { eventCatalog, isEventType } from './catalog.js';
import type { AivaEvent } from './event.js';

// Validation, retry rules and delivery log lines shared by the bus adapters (memory, SQLite and NATS): the
// envelope, then `data` against the catalog; maxDeliver and backoff.

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
 * Throws an EventValidationError naming the event type and the zod issues (events are internal, not user input).
 */
export function validateEvent(value: unknown): AivaEvent {
  const envelope = envelopeSchema.safeParse(value);
  const typeName =
    typeof (value as { type?: unknown } | null)?.type === 'string'
      ? (value as { type: string }).type
      : '(no type)';
  if (!envelope.success) {
    throw new EventValidationError(
      `Invalid event envelope for ${typeName}: ${describeIssues(envelope.error)}`,
    );
  }
  const { type } = envelope.data;
  if (!isEventType(type))
    throw new EventValidationError(`Unknown event type ${type}: not in the event catalog`);
  const data = eventCatalog[type].safeParse(envelope.data.data);
  if (!data.success)
    throw new EventValidationError(`Invalid event ${type}: data.${describeIssues(data.error)}`);
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

/** Logs a dead letter at error level: ids, type, delivery count and error only, never the event data. */
export function logDeadLetter(logger: Logger | undefined, letter: DeadLetter): void {
  logger?.error(
    {
      consumer: letter.consumer,
      eventId: letter.event.id,
      type: letter.event.type,
      deliveries: letter.deliveries,
      err: letter.error,
    },
    'event dead-lettered',
  );
}

/**
 * Logs a failed delivery that will be retried (warn): ids, type, delivery number and error, never the data.
 */
export function logRetry(
  logger: Logger | undefined,
  failure: { consumer: string; event: AivaEvent; delivery: number; error: unknown },
): void {
  logger?.warn(
    {
      consumer: failure.consumer,
      eventId: failure.event.id,
      type: failure.event.type,
      delivery: failure.delivery,
      err: errorMessage(failure.error),
    },
    'event handler failed; will retry',
  );
}
