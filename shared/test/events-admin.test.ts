import { describe, expect, it } from 'vitest';
import { busAdminOf, DeadLetterNotFoundError, deadLetterSeq } from '../src/events/admin/admin.js';
import { describeEventFields, renderEventCatalog } from '../src/events/admin/catalog-doc.js';
import { EventsUsageError, formatTable, parseEventsArgs } from '../src/events/admin/commands.js';
import { EVENT_TYPES, eventDirectory } from '../src/events/catalog.js';
import { createEventBus } from '../src/events/create-bus.js';
import { createMemoryBus } from '../src/events/memory.js';

describe('pnpm events command line', () => {
  it('parses every command, with --json anywhere', () => {
    expect(parseEventsArgs([])).toEqual({ command: 'status', json: false });
    expect(parseEventsArgs(['--json'])).toEqual({ command: 'status', json: true });
    expect(parseEventsArgs(['dead'])).toEqual({ command: 'dead', json: false });
    expect(parseEventsArgs(['dead', 'users.email-sync', '--json'])).toEqual({
      command: 'dead',
      consumer: 'users.email-sync',
      json: true,
    });
    expect(parseEventsArgs(['replay', '42'])).toEqual({ command: 'replay', id: '42', json: false });
    expect(parseEventsArgs(['replay', '--all', 'auth.account-removal'])).toEqual({
      command: 'replay-all',
      consumer: 'auth.account-removal',
      json: false,
    });
    expect(parseEventsArgs(['discard', '7', '--json'])).toEqual({ command: 'discard', id: '7', json: true });
    expect(parseEventsArgs(['catalog'])).toEqual({ command: 'catalog', json: false });
    expect(parseEventsArgs(['--help'])).toEqual({ command: 'help', json: false });
  });

  it('refuses what it cannot run unambiguously', () => {
    for (const args of [
      ['replay'],
      ['replay', '1', '2'],
      ['replay', '--all'],
      ['discard'],
      ['discard', '--all', 'x'],
      ['dead', 'a', 'b'],
      ['status', 'x'],
      ['rewind'],
      ['--force'],
    ]) {
      expect(() => parseEventsArgs(args), args.join(' ')).toThrow(EventsUsageError);
    }
  });

  it('formats a table with aligned columns', () => {
    expect(formatTable(['A', 'LONGER'], [['xyz', '1']])).toBe('A    LONGER\nxyz  1');
  });
});

describe('dead-letter ids', () => {
  it('are positive integers; anything else is an unknown dead letter', () => {
    expect(deadLetterSeq('17')).toBe(17);
    for (const id of ['0', '-1', '1.5', 'abc', '', '99999999999999999999']) {
      expect(() => deadLetterSeq(id), id).toThrow(DeadLetterNotFoundError);
    }
  });
});

describe('busAdminOf', () => {
  it('gives the admin side of an adapter, and none for a service view of the shared memory bus', async () => {
    const bus = createMemoryBus();
    expect(busAdminOf(bus)?.kind).toBe('memory');
    await bus.close();
    const view = await createEventBus({ source: 'admin-test' });
    expect(busAdminOf(view)).toBeNull();
    await view.close();
  });
});

describe('event catalog documentation', () => {
  it('names a producer for every type, the one its name says', () => {
    for (const type of EVENT_TYPES) {
      expect(type.startsWith(`aiva.${eventDirectory[type].producer}.`), type).toBe(true);
    }
  });

  it('describes the data fields from the zod schemas', () => {
    expect(describeEventFields('aiva.users.user.deleted.v1')).toEqual([
      '`id`: uuid',
      '`deletedAt`: date-time',
    ]);
    expect(describeEventFields('aiva.users.user.updated.v1')).toContain('`changedFields`: string[]');
    expect(describeEventFields('aiva.users.user.updated.v1')).toContain('`displayName`: string \\| null');
    expect(describeEventFields('aiva.auth.password_reset.requested.v1')).toContain('`token`: sealed');
  });

  it('renders one row per type with its producer and consumers', () => {
    const markdown = renderEventCatalog();
    const rows = markdown.split('\n').filter((line) => line.startsWith('| `aiva.'));
    expect(rows).toHaveLength(EVENT_TYPES.length);
    const row = (type: string) => rows.find((r) => r.startsWith(`| \`${type}\` |`)) ?? '';
    expect(row('aiva.auth.user.email_changed.v1')).toContain(
      '| auth | `users.email-sync`, `notifications.contact-sync` |',
    );
    expect(row('aiva.users.user.deleted.v1')).toContain(
      '| users | `auth.account-removal`, `notifications.account-removal`, `media.account-removal`, `ai.account-removal` |',
    );
    expect(row('aiva.orchestrator.instance.up.v1')).toContain('| orchestrator | — |');
  });
});
