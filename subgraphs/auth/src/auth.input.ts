import { z } from 'zod';

/** Sign-up and sign-in inputs, checked at the resolver edge. Password policy is checked by password.ts. */
export const emailInput = z
  .string()
  .trim()
  .max(254, 'must be at most 254 characters')
  .email('must be a valid email address')
  .transform((email) => email.toLowerCase());

/** Bounded before hashing, whatever the policy says, so no one makes us hash megabytes. */
const passwordInput = z.string().max(1024, 'is too long');

export const signUpInput = z.object({
  email: emailInput,
  password: passwordInput,
  username: z.string(),
  firstName: z.string(),
  lastName: z.string(),
});
export type SignUpInput = z.infer<typeof signUpInput>;

export const signInInput = z.object({
  email: z
    .string()
    .trim()
    .max(254)
    .transform((e) => e.toLowerCase()),
  password: passwordInput,
});
export type SignInInput = z.infer<typeof signInInput>;

export const tokenInput = z.string().min(1, 'is required').max(512, 'is too long');
export const changePasswordInput = z.object({ currentPassword: passwordInput, newPassword: passwordInput });
export const resetPasswordInput = z.object({ token: tokenInput, newPassword: passwordInput });
export const requestEmailChangeInput = z.object({ newEmail: emailInput, currentPassword: passwordInput });
