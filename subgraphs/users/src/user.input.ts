import { z } from 'zod';

/** Input rules for profiles, applied at the resolver edge. */
const email = z
  .string()
  .trim()
  .max(254, 'must be at most 254 characters')
  .email('must be a valid email address');
const username = z
  .string()
  .trim()
  .min(3, 'must be at least 3 characters')
  .max(32, 'must be at most 32 characters')
  .regex(/^[A-Za-z0-9_.-]+$/, 'may contain only letters, digits, "_", "." and "-"');
const name = z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters');

export const createUserInput = z.object({
  email,
  username,
  firstName: name,
  lastName: name,
  displayName: name.nullish().transform((v) => v ?? null),
});
export type CreateUserInput = z.infer<typeof createUserInput>;

// No `email`: it belongs to auth, which changes it only after verifying the new address (users follows by event).
// Strict: an `email` sent anyway (straight to the subgraph, past the schema) is refused, never ignored.
export const updateUserInput = z
  .strictObject({
    username: username.optional(),
    firstName: name.optional(),
    lastName: name.optional(),
    displayName: name.nullable().optional(),
  })
  .refine((patch) => Object.values(patch).some((v) => v !== undefined), {
    message: 'must change at least one field',
  });
export type UpdateUserInput = z.infer<typeof updateUserInput>;

export const MAX_PAGE_SIZE = 100;
export const pageSize = z
  .number()
  .int()
  .min(1, 'must be at least 1')
  .max(MAX_PAGE_SIZE, `must be at most ${MAX_PAGE_SIZE}`);

export const userId = z.string().uuid('must be a user id');
