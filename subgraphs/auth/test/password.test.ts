import { AivaError } from '@aiva/shared';
import argon2 from 'argon2';
import { describe, expect, it } from 'vitest';
import {
  ARGON2_OPTIONS,
  burnPasswordCheck,
  checkPasswordPolicy,
  hashPassword,
  needsRehash,
  passwordSchema,
  verifyPassword,
} from '../src/password.js';

describe('password hashing', () => {
  it('hashes with argon2id and the OWASP parameters', async () => {
    const hash = await hashPassword('correct horse battery staple');
    expect(hash.startsWith('$argon2id$v=19$m=19456,t=2,p=1$')).toBe(true);
    expect(needsRehash(hash)).toBe(false);
  });

  it('salts every hash', async () => {
    expect(await hashPassword('same password')).not.toBe(await hashPassword('same password'));
  });

  it('verifies the right password and refuses a wrong one', async () => {
    const hash = await hashPassword('correct horse battery staple');
    expect(await verifyPassword(hash, 'correct horse battery staple')).toBe(true);
    expect(await verifyPassword(hash, 'correct horse battery stapl')).toBe(false);
    expect(await verifyPassword(hash, '')).toBe(false);
  });

  it('returns false for malformed hashes instead of throwing', async () => {
    for (const bad of [
      '',
      'not a hash',
      '$argon2id$',
      '$argon2id$v=19$m=19456,t=2,p=1$$',
      '$2b$10$abcdefghijk',
    ]) {
      expect(await verifyPassword(bad, 'whatever password')).toBe(false);
    }
    const hash = await hashPassword('correct horse battery staple');
    expect(await verifyPassword(hash.slice(0, -5), 'correct horse battery staple')).toBe(false);
    expect(await verifyPassword(undefined as unknown as string, 'x')).toBe(false);
  });

  it('asks for a rehash when the parameters differ or the hash is malformed', async () => {
    const weak = await argon2.hash('password123', { ...ARGON2_OPTIONS, memoryCost: 8192, timeCost: 1 });
    expect(needsRehash(weak)).toBe(true);
    const argon2i = await argon2.hash('password123', { ...ARGON2_OPTIONS, type: argon2.argon2i });
    expect(needsRehash(argon2i)).toBe(true);
    expect(needsRehash('garbage')).toBe(true);
  });

  it('burnPasswordCheck always returns false and costs about a verification', async () => {
    expect(await burnPasswordCheck('anything at all')).toBe(false);
    const hash = await hashPassword('correct horse battery staple');
    const t0 = performance.now();
    await burnPasswordCheck('correct horse battery staple');
    const burn = performance.now() - t0;
    const t1 = performance.now();
    await verifyPassword(hash, 'wrong password!');
    const verify = performance.now() - t1;
    // Same parameters, so the same order of work (loose bound: CI machines are noisy).
    expect(burn).toBeGreaterThan(verify / 5);
  });
});

describe('password policy', () => {
  const violation = (password: string, email?: string, field?: string): AivaError | undefined => {
    try {
      checkPasswordPolicy(password, email, field);
      return undefined;
    } catch (error) {
      expect(error).toBeInstanceOf(AivaError);
      return error as AivaError;
    }
  };

  it('accepts 8 to 128 characters', () => {
    expect(violation('a'.repeat(7))?.code).toBe('BAD_USER_INPUT');
    expect(violation('a'.repeat(8))).toBeUndefined();
    expect(violation('a'.repeat(128))).toBeUndefined();
    expect(violation('a'.repeat(129))?.code).toBe('BAD_USER_INPUT');
  });

  it('counts Unicode code points, not UTF-16 units', () => {
    // 4 emoji = 8 UTF-16 units but 4 characters.
    expect(violation('😀😀😀😀')).toBeDefined();
    expect(violation('😀'.repeat(8))).toBeUndefined();
    expect(violation('😀'.repeat(128))).toBeUndefined(); // 512 bytes
    expect(violation('😀'.repeat(129))).toBeDefined();
  });

  it('refuses more than 1024 UTF-8 bytes', () => {
    expect(violation('a'.repeat(5000))?.message).toMatch(/at most 128/);
  });

  it('refuses the email as password, whatever the case', () => {
    const error = violation('Alice@Example.COM', ' alice@example.com ');
    expect(error?.code).toBe('BAD_USER_INPUT');
    expect(error?.message).toMatch(/email/);
    expect(violation('alice@example.org', 'alice@example.com')).toBeUndefined();
  });

  it('names the field in extensions', () => {
    expect(violation('short')?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'password' });
    expect(violation('short', undefined, 'input.newPassword')?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.newPassword',
    });
  });

  it('has a zod schema for the length rules', () => {
    expect(passwordSchema.safeParse('a'.repeat(8)).success).toBe(true);
    expect(passwordSchema.safeParse('a'.repeat(7)).success).toBe(false);
    expect(passwordSchema.safeParse('a'.repeat(129)).success).toBe(false);
  });
});
