import type { z } from 'zod';
import { badUserInput } from './errors.js';

/**
 * Parses resolver input with a zod schema at the edge. A failure becomes BAD_USER_INPUT naming the first
 * offending field in `extensions.field` (dotted path inside the argument, e.g. `email`), plus every field at
 * fault in `extensions.fields`.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, argument?: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const fields = result.error.issues.map((issue) => issue.path.map(String).join('.') || argument || 'input');
  const first = result.error.issues[0];
  const field = fields[0] ?? argument ?? 'input';
  throw badUserInput(`Invalid ${field}: ${first?.message ?? 'invalid value'}`, {
    field,
    fields: [...new Set(fields)],
  });
}
