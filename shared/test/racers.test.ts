import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { race, startRacer } from '../src/testing/racers.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const RACER = join(HERE, 'fixtures/racer.ts');
const REPO_ROOT = resolve(HERE, '../..');

describe('racers', () => {
  it('start no earlier than the instant they are given, and report in the order they were given', async () => {
    const racers = await Promise.all(
      ['a', 'b'].map((mode) =>
        startRacer<{ mode: string; startedAt: number }>(RACER, [mode], { cwd: REPO_ROOT }),
      ),
    );
    const before = Date.now();
    const results = await race(racers, 300);
    expect(results.map((r) => r.mode)).toEqual(['a', 'b']);
    for (const result of results) expect(result.startedAt).toBeGreaterThanOrEqual(before + 300);
  });

  it('reject with what a failing racer wrote and its exit code', async () => {
    const racer = await startRacer(RACER, ['fail'], { cwd: REPO_ROOT });
    await expect(race([racer])).rejects.toThrow(/exited with 3, writing: the racer fell/);
  });

  it('reject when the script never becomes ready', async () => {
    await expect(startRacer(join(HERE, 'fixtures/no-such-racer.ts'), [], { cwd: REPO_ROOT })).rejects.toThrow(
      /exited before it was ready/,
    );
  });
});
