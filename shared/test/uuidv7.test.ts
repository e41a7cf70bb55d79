import { describe, expect, it } from 'vitest';
import { UUID_V7_PATTERN, uuidv7 } from '../src/events/uuidv7.js';

/** The 48-bit millisecond timestamp at the front of a UUIDv7. */
const timestampOf = (id: string) => Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16);

describe('uuidv7', () => {
  it('has the RFC 9562 version 7 layout', () => {
    for (let i = 0; i < 100; i++) {
      const id = uuidv7();
      expect(id).toMatch(UUID_V7_PATTERN);
      expect(id[14]).toBe('7');
      expect('89ab').toContain(id[19]);
    }
  });

  it('encodes the creation time in the first 48 bits', () => {
    const now = Date.UTC(2030, 0, 1, 12, 0, 0, 123);
    expect(timestampOf(uuidv7(now))).toBe(now);
  });

  it('sorts in creation order, also within one millisecond', () => {
    const fixed = Date.UTC(2031, 5, 1);
    const ids = Array.from({ length: 2_000 }, () => uuidv7(fixed));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('stays monotonic when the clock goes backwards', () => {
    const later = uuidv7(Date.UTC(2032, 0, 1));
    const earlier = uuidv7(Date.UTC(2020, 0, 1));
    expect(earlier > later).toBe(true);
  });

  it('sorts ids made at increasing times', () => {
    const ids = [0, 1, 2, 1_000, 60_000].map((offset) => uuidv7(Date.UTC(2033, 0, 1) + offset));
    expect([...ids].sort()).toEqual(ids);
  });
});
