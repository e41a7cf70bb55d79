import { z } from 'zod';

/** Thrown when the environment does not satisfy a service's configuration schema. Names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Empty variables count as unset, so `FOO=` falls back to the default instead of failing. */
function withoutEmpty(env: Env): Env {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
}

/**
 * Parses the environment once with a zod object schema whose keys are variable names.
 * Throws ConfigError naming each missing or invalid variable (never echoing its value: it may be a secret).
 */
export function loadConfig<S extends z.ZodType>(schema: S, env: Env = process.env): z.infer<S> {
  const result = schema.safeParse(withoutEmpty(env));
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    const what = issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message;
    return `${name}: ${what}`;
  });
  throw new ConfigError(problems);
}

/** Like loadConfig, but a bad configuration stops the process with the message on stderr (exit code 78). */
export function loadConfigOrExit<S extends z.ZodType>(schema: S, env: Env = process.env): z.infer<S> {
  try {
    return loadConfig(schema, env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
}

/** Building blocks for service config schemas. */
export const env = {
  port: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  url: (protocols: string[]) =>
    z
      .string()
      .url()
      .refine((value) => protocols.some((p) => value.startsWith(`${p}://`)), {
        message: `must be a URL starting with ${protocols.map((p) => `${p}://`).join(' or ')}`,
      }),
  positiveInt: (fallback: number) => z.coerce.number().int().positive().default(fallback),
  list: (fallback: string) =>
    z
      .string()
      .default(fallback)
      .transform((value) =>
        value
          .split(',')
          .map((item) => item.trim())
          .filter(Boolean),
      ),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

/** Variables every AIVA process understands. */
export const commonEnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: env.logLevel(),
  HOST: z.string().default('127.0.0.1'),
  DATA_DIR: z.string().default('.data'),
  NATS_URL: env.url(['nats', 'tls', 'ws', 'wss']).optional(),
  REDIS_URL: env.url(['redis', 'rediss']).optional(),
});
export type CommonEnv = z.infer<typeof commonEnvSchema>;
