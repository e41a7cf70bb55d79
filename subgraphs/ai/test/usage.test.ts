import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAivaError, uuidv7 } from '@aiva/shared';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteAiStore } from '../src/store/sqlite.js';
import { dayOf, secondsUntilTomorrow, UsageMeter } from '../src/usage.js';

const dir = mkdtempSync(join(tmpdir(), 'aiva-usage-'));
const store = openSqliteAiStore({ file: join(dir, 'ai.sqlite') });
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('daily quotas', () => {
  it('count per UTC day and renew at midnight UTC', () => {
    const late = new Date('2026-11-27T23:59:30.000Z');
    expect(dayOf(late)).toBe('2026-11-27');
    expect(secondsUntilTomorrow(late)).toBe(30);
    expect(secondsUntilTomorrow(new Date('2026-11-27T00:00:00.000Z'))).toBe(86_400);
  });

  it('refuse a capability once its requests or all tokens of the day are spent, and not the next day', async () => {
    let now = new Date('2026-11-27T12:00:00.000Z');
    const meter = new UsageMeter(store, { requests: 2, tokens: 100 }, () => now);
    const person = uuidv7();
    await meter.check(person, 'chat');
    await meter.record(person, 'chat', 10, 5);
    await meter.record(person, 'chat', 10, 5);
    const refused = await meter.check(person, 'chat').catch((error) => error);
    expect(isAivaError(refused) && refused.extensions).toMatchObject({
      code: 'RATE_LIMITED',
      retryAfter: 43_200,
    });
    // Another capability has its own requests, but the tokens are shared.
    await meter.check(person, 'embedding');
    await meter.record(person, 'embedding', 80, 0);
    expect(await meter.check(person, 'embedding').catch((error) => error.message)).toMatch(/100 tokens/);
    now = new Date('2026-11-28T00:00:01.000Z');
    await expect(meter.check(person, 'chat')).resolves.toBeUndefined();
  });
});
