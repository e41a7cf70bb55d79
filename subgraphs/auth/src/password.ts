import { badUserInput } from '@aiva/shared';
import argon2 from 'argon2';
import { z } from 'zod';

/** OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane. */
export const ARGON2_OPTIONS = {
  type: argon2.argon2id,
  memoryCost: 19_456, // KiB = 19 MiB
  timeCost: 2,
  parallelism: 1,
} as const;

export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 128;
/** Bytes (UTF-8): bounds the work done on a password before it is hashed (128 code points fit in 512). */
export const PASSWORD_MAX_BYTES = 1024;

/** An argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`). */
export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, ARGON2_OPTIONS);
}

/** True when `password` matches `hash`; false on a mismatch, a malformed hash or any other bad input. Never throws. */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  if (typeof hash !== 'string' || typeof password !== 'string' || !hash.startsWith('$argon2')) return false;
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

/** True when `hash` was made with other parameters (or is not argon2id, or is malformed): rehash on next sign-in. */
export function needsRehash(hash: string): boolean {
  if (typeof hash !== 'string' || !hash.startsWith('$argon2id$')) return true;
  try {
    return argon2.needsRehash(hash, ARGON2_OPTIONS);
  } catch {
    return true;
  }
}

let dummyHash: Promise<string> | undefined;

/**
 * Spends the same work as checking a wrong password (verifies against a dummy hash made once, lazily, with
 * ARGON2_OPTIONS) so that signing in with an unknown email costs the same as a wrong password. Always false.
 */
export async function burnPasswordCheck(password: string): Promise<false> {
  if (!dummyHash) {
    const pending = argon2.hash('aiva-dummy-password-for-timing', ARGON2_OPTIONS);
    dummyHash = pending;
    pending.catch(() => {
      if (dummyHash === pending) dummyHash = undefined;
    });
  }
  try {
    await verifyPassword(await dummyHash, typeof password === 'string' ? password : '');
  } catch {
    // verifyPassword never throws; hashing the dummy could (out of memory), which must not leak either.
  }
  return false;
}

const codePoints = (value: string) => {
  let count = 0;
  for (const _ of value) count++;
  return count;
};

/**
 * Why `password` is not acceptable, or null. Length is counted in Unicode code points (8..128); more than
 * 1024 UTF-8 bytes is refused before anything else; the password may not be the email (case-insensitive).
 */
export function passwordPolicyViolation(password: string, email?: string): string | null {
  if (Buffer.byteLength(password, 'utf8') > PASSWORD_MAX_BYTES) {
    return `Password must be at most ${PASSWORD_MAX_LENGTH} characters`;
  }
  const length = codePoints(password);
  if (length < PASSWORD_MIN_LENGTH) return `Password must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (length > PASSWORD_MAX_LENGTH) return `Password must be at most ${PASSWORD_MAX_LENGTH} characters`;
  const normalizedEmail = email?.trim().toLowerCase();
  if (normalizedEmail && password.trim().toLowerCase() === normalizedEmail) {
    return 'Password must not be your email address';
  }
  return null;
}

/** Throws BAD_USER_INPUT (`extensions.field` = `field`) when `password` breaks the policy. */
export function checkPasswordPolicy(password: string, email?: string, field = 'password'): void {
  const violation = passwordPolicyViolation(password, email);
  if (violation) throw badUserInput(violation, { field });
}

/** The length/size part of the policy as a zod schema (the email rule needs the email: use checkPasswordPolicy). */
export const passwordSchema = z.string().superRefine((password, ctx) => {
  const violation = passwordPolicyViolation(password);
  if (violation) ctx.addIssue({ code: 'custom', message: violation });
});
