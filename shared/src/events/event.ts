import type { z } from 'zod';
import { type EventCatalog, type EventType, eventCatalog } from './catalog.js';
import { uuidv7 } from './uuidv7.js';

/** The envelope every AIVA event travels in. `id` is a UUIDv7; `type` is also the NATS subject. */
export interface EventEnvelope<TData = unknown, TType extends string = string> {
  id: string;
  type: TType;
  occurredAt: string;
  source: string;
  data: TData;
}

export type EventData<T extends EventType> = z.infer<EventCatalog[T]>;
export type AivaEvent<T extends EventType = EventType> = EventEnvelope<EventData<T>, T>;

/** Builds a validated event envelope for a catalog type. Throws when `data` does not match the catalog schema. */
export function createEvent<T extends EventType>(type: T, source: string, data: EventData<T>): AivaEvent<T> {
  const parsed = eventCatalog[type].parse(data) as EventData<T>;
  return { id: uuidv7(), type, occurredAt: new Date().toISOString(), source, data: parsed };
}
