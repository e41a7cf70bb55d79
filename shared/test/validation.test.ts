import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AivaError } from '../src/errors.js';
import { parseInput } from '../src/validation.js';

describe('parseInput', () => {
  const schema = z.object({ email: z.string().email(), name: z.string().min(1) });

  it('returns parsed data', () => {
    expect(parseInput(schema, { email: 'a@b.test', name: 'A' })).toEqual({ email: 'a@b.test', name: 'A' });
  });

  it('throws BAD_USER_INPUT naming the offending fields', () => {
    try {
      parseInput(schema, { email: 'nope', name: '' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(AivaError);
      const aiva = error as AivaError;
      expect(aiva.code).toBe('BAD_USER_INPUT');
      expect(aiva.extensions.field).toBe('email');
      expect(aiva.extensions.fields).toEqual(['email', 'name']);
      expect(aiva.message).toMatch(/^Invalid email/);
    }
  });
});
