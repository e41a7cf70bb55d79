import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AivaEvent } from '../src/events/event.js';
import type { OutboxStore } from '../src/events/outbox.js';
import { userCreated } from '../src/testing/index.js';

/** An outbox adapter under test, with the write its store does inside its own transactions. */
export interface OutboxUnderTest {
  outbox: OutboxStore;
  write(events: readonly AivaEvent[]): Promise<void>;
  close(): Promise<void>;
}

const failure = (error: string, maxAttempts = 3, permanent = false) => ({ error, maxAttempts, permanent });

/**
 * What every outbox adapter (SQLite, MongoDB) does with failures, quarantine and the relay lease. `open` gives a
 * fresh, empty outbox.
 */
export function outboxContract(name: string, open: () => Promise<OutboxUnderTest>): void {
  describe(`${name} outbox: quarantine and relay lease`, () => {
    let subject: OutboxUnderTest;
    beforeEach(async () => {
      subject = await open();
    });
    afterEach(async () => {
      await subject.close();
    });

    const pendingIds = async () => (await subject.outbox.pendingEvents(100)).map((e) => e.id);

    it('counts failed attempts and quarantines a row at maxAttempts; later rows stay in order', async () => {
      const [a, b, c] = [userCreated(), userCreated(), userCreated()];
      await subject.write([a, b, c]);
      const { outbox } = subject;
      expect(await outbox.recordFailure(a.id, failure('refused'))).toEqual({
        attempts: 1,
        quarantined: false,
      });
      expect(await outbox.recordFailure(a.id, failure('refused'))).toEqual({
        attempts: 2,
        quarantined: false,
      });
      expect(await pendingIds()).toEqual([a.id, b.id, c.id]);
      expect(await outbox.recordFailure(a.id, failure('refused again'))).toEqual({
        attempts: 3,
        quarantined: true,
      });
      expect(await pendingIds()).toEqual([b.id, c.id]);
      expect(await outbox.outboxStats()).toEqual({ pending: 2, quarantined: 1 });
      const [held] = await outbox.quarantinedEvents();
      expect(held).toMatchObject({ event: { id: a.id, type: a.type }, attempts: 3, error: 'refused again' });
      expect(held?.quarantinedAt).toBeInstanceOf(Date);
      expect(held?.event).toEqual(a);
      // A quarantined, published or unknown row counts nothing more.
      expect(await outbox.recordFailure(a.id, failure('x'))).toEqual({ attempts: 0, quarantined: false });
      await outbox.markPublished([b.id]);
      expect(await outbox.recordFailure(b.id, failure('x'))).toEqual({ attempts: 0, quarantined: false });
      expect(await outbox.recordFailure(userCreated().id, failure('x'))).toEqual({
        attempts: 0,
        quarantined: false,
      });
    });

    it('quarantines a permanent failure at once', async () => {
      const [a, b] = [userCreated(), userCreated()];
      await subject.write([a, b]);
      expect(await subject.outbox.recordFailure(a.id, failure('Invalid event', 10, true))).toEqual({
        attempts: 1,
        quarantined: true,
      });
      expect(await pendingIds()).toEqual([b.id]);
    });

    it('replays quarantined rows at their place with a fresh budget, or discards them', async () => {
      const [a, b, c] = [userCreated(), userCreated(), userCreated()];
      await subject.write([a, b, c]);
      const { outbox } = subject;
      await outbox.recordFailure(a.id, failure('bad', 1));
      await outbox.recordFailure(c.id, failure('bad', 1));
      expect(await pendingIds()).toEqual([b.id]);
      expect(await outbox.replayQuarantined([])).toBe(0);
      expect(await outbox.replayQuarantined([a.id, b.id])).toBe(1); // b is not quarantined
      expect(await pendingIds()).toEqual([a.id, b.id]);
      expect(await outbox.recordFailure(a.id, failure('bad', 2))).toEqual({
        attempts: 1,
        quarantined: false,
      });
      expect(await outbox.discardQuarantined([a.id, b.id])).toBe(0); // none of them is quarantined
      expect(await outbox.discardQuarantined([c.id])).toBe(1);
      expect(await outbox.outboxStats()).toEqual({ pending: 2, quarantined: 0 });
      await outbox.recordFailure(b.id, failure('bad', 1));
      expect(await outbox.replayQuarantined()).toBe(1);
      expect(await pendingIds()).toEqual([a.id, b.id]);
    });

    it('gives the relay lease to one owner at a time until it expires or is released', async () => {
      const { outbox } = subject;
      expect(await outbox.acquireRelayLease('a', 60_000)).toBe(true);
      expect(await outbox.acquireRelayLease('b', 60_000)).toBe(false);
      expect(await outbox.acquireRelayLease('a', 60_000)).toBe(true); // renewal
      await outbox.releaseRelayLease('b'); // not b's: nothing happens
      expect(await outbox.acquireRelayLease('b', 60_000)).toBe(false);
      await outbox.releaseRelayLease('a');
      expect(await outbox.acquireRelayLease('b', 50)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 120));
      expect(await outbox.acquireRelayLease('a', 60_000)).toBe(true); // b's expired
      expect(await outbox.acquireRelayLease('b', 60_000)).toBe(false);
    });

    it('lets exactly one of many concurrent owners take a free lease', async () => {
      const owners = Array.from({ length: 8 }, (_, i) => `owner-${i}`);
      const taken = await Promise.all(owners.map((o) => subject.outbox.acquireRelayLease(o, 60_000)));
      expect(taken.filter(Boolean)).toHaveLength(1);
    });
  });
}
