import type { Logger } from '../log.js';
import type { EventBus, Subscription } from './bus.js';
import type { EventType } from './catalog.js';
import type { AivaEvent } from './event.js';

/** Applies an event once for `consumer`; false when it had been applied already (a redelivery). */
export type ApplyOnce<T extends EventType> = (consumer: string, event: AivaEvent<T>) => Promise<boolean>;

/**
 * The subscriber of a service's durable consumers: `on(consumer, type, apply)` subscribes `apply`, which applies
 * each event once (its effects and the processed id in one transaction) and says whether it did; a redelivery
 * of an event already applied is noted at debug level.
 */
export function onceConsumers(bus: EventBus, logger: Logger) {
  return <T extends EventType>(consumer: string, type: T, apply: ApplyOnce<T>): Promise<Subscription> =>
    bus.subscribe(consumer, type, async (event) => {
      if (!(await apply(consumer, event)))
        logger.debug({ consumer, eventId: event.id }, 'event already processed');
    });
}
