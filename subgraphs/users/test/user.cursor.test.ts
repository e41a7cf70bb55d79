import { AivaError, uuidv7 } from '@aiva/shared';
import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../src/user.cursor.js';

describe('user cursors', () => {
  it('round-trip an id and are opaque', () => {
    const id = uuidv7();
    const cursor = encodeCursor(id);
    expect(cursor).not.toContain(id);
    expect(decodeCursor(cursor)).toBe(id);
  });

  for (const bad of [
    '',
    'garbage',
    '%%%',
    Buffer.from('u:123').toString('base64url'),
    Buffer.from(uuidv7()).toString('base64url'),
  ]) {
    it(`reject ${JSON.stringify(bad)} with BAD_USER_INPUT on after`, () => {
      try {
        decodeCursor(bad);
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(AivaError);
        expect((error as AivaError).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
      }
    });
  }
});
