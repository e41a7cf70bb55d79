// The names the NATS bus gives things on the server (streams, subjects, durables), shared by the bus (nats.ts)
// and its admin side (admin/nats-admin.ts).

export const DEFAULT_STREAM = 'AIVA';
export const EVENT_SUBJECTS = 'aiva.>';
export const DEAD_LETTER_STREAM = 'AIVA_DLQ';
export const DEAD_LETTER_PREFIX = 'aiva_dlq';

/** A NATS name token: no dots, wildcards, whitespace or path separators. */
export function natsToken(value: string): string {
  return value.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** One durable per (consumer, type), so one consumer name can subscribe to several types. */
export function durableName(consumer: string, type: string): string {
  return `${natsToken(consumer)}__${natsToken(type)}`;
}

/** Where a consumer's dead letters of one type go: `aiva_dlq.<consumer token>.<type>`. */
export function deadLetterSubject(consumer: string, type: string): string {
  return `${DEAD_LETTER_PREFIX}.${natsToken(consumer)}.${type}`;
}

/** The subjects holding a consumer's dead letters (all types), or every consumer's. */
export function deadLetterFilter(consumer?: string): string {
  return consumer === undefined
    ? `${DEAD_LETTER_PREFIX}.>`
    : `${DEAD_LETTER_PREFIX}.${natsToken(consumer)}.>`;
}

/** Whether a JetStream API error says "not found" (stream, consumer or message). */
export function isNotFound(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown; api_error?: { code?: number } } | null;
  return (
    e?.api_error?.code === 404 ||
    e?.code === '404' ||
    /\bnot found\b|no message found/i.test(String(e?.message))
  );
}
