import { describe, expect, it } from 'vitest';
import { createEventBus, sharedMemoryBus } from '../src/events/create-bus.js';
import { createMemoryBus } from '../src/events/memory.js';
import { busContract, userCreated, waitFor } from '../src/testing/index.js';

busContract('memory', async () => createMemoryBus());

describe('memory bus specifics', () => {
  it('drain() waits until queued deliveries are handled', async () => {
    const bus = createMemoryBus();
    const seen: string[] = [];
    await bus.subscribe('test.drain', 'aiva.users.user.created.v1', async (event) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      seen.push(event.id);
    });
    const events = [userCreated(), userCreated(), userCreated()];
    for (const event of events) await bus.publish(event);
    expect(seen).toEqual([]); // handlers run asynchronously
    await bus.drain();
    expect(seen).toEqual(events.map((e) => e.id));
    await bus.close();
  });

  it('hands each consumer its own copy of the event', async () => {
    const bus = createMemoryBus();
    const copies: unknown[] = [];
    for (const consumer of ['test.copy-a', 'test.copy-b']) {
      await bus.subscribe(consumer, 'aiva.users.user.created.v1', async (event) => {
        copies.push(event);
        (event.data as { firstName: string }).firstName = 'mutated';
      });
    }
    const event = userCreated();
    await bus.publish(event);
    await bus.drain();
    expect(copies).toHaveLength(2);
    expect(copies[0]).not.toBe(copies[1]);
    expect(event.data.firstName).toBe('Ada');
  });

  it('forgets ids beyond the dedupe window', async () => {
    const bus = createMemoryBus({ dedupeWindow: 2 });
    const seen: string[] = [];
    await bus.subscribe('test.window', 'aiva.users.user.created.v1', async (event) => {
      seen.push(event.id);
    });
    const [a, b, c] = [userCreated(), userCreated(), userCreated()];
    for (const event of [a!, b!, c!, a!]) await bus.publish(event);
    await bus.drain();
    expect(seen).toEqual([a!.id, b!.id, c!.id, a!.id]);
  });

  it('close() does not sit out a long backoff', async () => {
    const bus = createMemoryBus();
    let calls = 0;
    await bus.subscribe(
      'test.close',
      'aiva.users.user.created.v1',
      async () => {
        calls++;
        throw new Error('always');
      },
      { backoffMs: [60_000] },
    );
    await bus.publish(userCreated());
    await waitFor(() => calls === 1, 1_000, 'first delivery');
    const started = Date.now();
    await bus.close();
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('createEventBus without a URL gives services views of one shared bus', async () => {
    const users = await createEventBus({ source: 'users' });
    const audit = await createEventBus({ source: 'audit' });
    expect(users.kind).toBe('memory');
    const seen: string[] = [];
    const event = userCreated();
    await audit.subscribe('audit.users', 'aiva.users.user.created.v1', async (e) => {
      if (e.id === event.id) seen.push(e.id);
    });
    await users.publish(event);
    await sharedMemoryBus().drain();
    expect(seen).toEqual([event.id]);

    // One service closing stops its own subscriptions only; the others keep publishing.
    await audit.close();
    await expect(audit.publish(userCreated())).rejects.toThrow(/closed/);
    await expect(users.publish(userCreated())).resolves.toBeUndefined();
    await users.close();
  });
});
