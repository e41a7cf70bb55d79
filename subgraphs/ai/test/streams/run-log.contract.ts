import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followRun, type RunEvent, type RunLog, RunWriter } from '../../src/streams/run-log.js';

/** The run log's contract, run against each adapter (`open` gives a fresh log and a second one on the same data). */
export function runLogContract(
  name: string,
  open: () => Promise<{ log: RunLog; peer: () => Promise<RunLog>; cleanup(): Promise<void> }>,
): void {
  describe(`run log contract: ${name}`, () => {
    let opened: Awaited<ReturnType<typeof open>>;
    let log: RunLog;
    beforeAll(async () => {
      opened = await open();
      log = opened.log;
    });
    afterAll(async () => {
      await log?.close();
      await opened?.cleanup();
    });

    const collect = async (source: AsyncIterable<RunEvent>) => {
      const events: RunEvent[] = [];
      for await (const event of source) events.push(event);
      return events;
    };

    it('keeps a run for its owner, with its events in order, until it expires', async () => {
      const runId = randomUUID();
      await log.create(runId, 'owner-1', 60_000);
      expect(await log.ownerOf(runId)).toBe('owner-1');
      expect(await log.ownerOf(randomUUID())).toBeNull();
      const writer = new RunWriter(log, runId);
      await writer.delta('Hel');
      await writer.delta('lo');
      await writer.done({ messageId: 'm1' });
      await expect(writer.delta('late')).rejects.toThrow(/ended/);
      expect(await log.readAfter(runId, 0, 10)).toEqual([
        { seq: 1, type: 'delta', data: { text: 'Hel' } },
        { seq: 2, type: 'delta', data: { text: 'lo' } },
        { seq: 3, type: 'done', data: { messageId: 'm1' } },
      ]);
      expect((await log.readAfter(runId, 1, 1)).map((e) => e.seq)).toEqual([2]);
      const expiring = randomUUID();
      await log.create(expiring, 'owner-1', 150);
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(await log.ownerOf(expiring)).toBeNull();
    });

    it('lets a reader on another connection follow a run live and resume after the last event it saw', async () => {
      const runId = randomUUID();
      await log.create(runId, 'owner-2', 60_000);
      const reader = await opened.peer();
      try {
        const writer = new RunWriter(log, runId);
        await writer.delta('a');
        const live = collect(followRun(reader, runId, 0, new AbortController().signal, 5_000));
        await new Promise((resolve) => setTimeout(resolve, 100));
        await writer.delta('b');
        await writer.delta('c');
        await writer.fail('The provider failed', 'INTERNAL_SERVER_ERROR');
        expect((await live).map((e) => [e.seq, e.type])).toEqual([
          [1, 'delta'],
          [2, 'delta'],
          [3, 'delta'],
          [4, 'error'],
        ]);
        const resumed = await collect(followRun(reader, runId, 2, new AbortController().signal, 5_000));
        expect(resumed.map((e) => e.seq)).toEqual([3, 4]);
      } finally {
        await reader.close();
      }
    });

    it('stops following when the reader goes away', async () => {
      const runId = randomUUID();
      await log.create(runId, 'owner-3', 60_000);
      const abort = new AbortController();
      const following = collect(followRun(log, runId, 0, abort.signal, 60_000));
      await new Promise((resolve) => setTimeout(resolve, 50));
      abort.abort();
      expect(await following).toEqual([]);
    });
  });
}
