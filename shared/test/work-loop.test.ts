import { describe, expect, it } from 'vitest';
import { WorkLoop } from '../src/jobs/work-loop.js';
import { waitFor } from '../src/testing/index.js';

/** A queue of numbered items and a record of the work done on them. */
function queue(items: number) {
  const pending = Array.from({ length: items }, (_, i) => i);
  const state = { active: 0, peak: 0, done: [] as number[], claims: 0 };
  const release = new Map<number, () => void>();
  return {
    pending,
    state,
    release,
    claim: async (limit: number) => {
      state.claims += 1;
      return pending.splice(0, limit);
    },
    work: async (item: number) => {
      state.active += 1;
      state.peak = Math.max(state.peak, state.active);
      await new Promise<void>((resolve) => release.set(item, resolve));
      state.active -= 1;
      state.done.push(item);
    },
  };
}

describe('WorkLoop', () => {
  it('keeps at most `concurrency` items in work and claims more as slots free up', async () => {
    const q = queue(5);
    const loop = new WorkLoop({
      label: 'test',
      claim: q.claim,
      work: q.work,
      concurrency: 2,
      pollMs: 60_000,
    });
    loop.start();
    await waitFor(() => q.state.active === 2, 5_000, 'two in work');
    expect(loop.inFlight).toBe(2);
    expect(q.pending).toEqual([2, 3, 4]);
    q.release.get(0)?.();
    // The freed slot is filled at once, not at the next poll (a minute away).
    await waitFor(() => q.release.has(2), 5_000, 'the third item');
    for (const item of [1, 2, 3, 4]) {
      await waitFor(() => q.release.has(item), 5_000, `item ${item}`);
      q.release.get(item)?.();
    }
    await waitFor(() => q.state.done.length === 5, 5_000, 'all done');
    expect(q.state.peak).toBe(2);
    await loop.stop();
  });

  it('wakes on notify, and stop waits for the items in work and claims nothing more', async () => {
    const q = queue(0);
    const loop = new WorkLoop({
      label: 'test',
      claim: q.claim,
      work: q.work,
      concurrency: 1,
      pollMs: 60_000,
    });
    loop.start();
    await waitFor(() => q.state.claims === 1, 5_000, 'the first look');
    q.pending.push(7, 8);
    loop.notify();
    await waitFor(() => q.release.has(7), 5_000, 'the queued item');
    let stopped = false;
    const stopping = loop.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stopped).toBe(false);
    q.release.get(7)?.();
    await stopping;
    expect(q.state.done).toEqual([7]);
    expect(q.pending).toEqual([8]);
  });

  it('looks again after a failed claim, and a failed item does not stop the loop', async () => {
    let calls = 0;
    const worked: number[] = [];
    const loop = new WorkLoop<number>({
      label: 'test',
      claim: async () => {
        calls += 1;
        if (calls === 1) throw new Error('store unavailable');
        return calls <= 3 ? [calls] : [];
      },
      work: async (item) => {
        worked.push(item);
        if (item === 2) throw new Error('bad item');
      },
      concurrency: 1,
      pollMs: 10,
    });
    loop.start();
    await waitFor(() => worked.length === 2, 5_000, 'two items');
    await loop.stop();
    expect(worked).toEqual([2, 3]);
  });
});
