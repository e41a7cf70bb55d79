import { commonEnvSchema, env, mongoEnvSchema, tokenEnvSchema } from '@aiva/shared';
import { z } from 'zod';

export const usersEnvSchema = commonEnvSchema
  .extend(tokenEnvSchema.shape)
  .extend(mongoEnvSchema.shape)
  .extend({
    USERS_PORT: env.port(3001),
    /** SQLite file of the embedded store; default `<DATA_DIR>/users.sqlite`. */
    USERS_DB_FILE: z.string().optional(),
    /** When set, profiles live in MongoDB instead of SQLite. */
    MONGODB_URL: env.url(['mongodb', 'mongodb+srv']).optional(),
  });
export type UsersConfig = z.infer<typeof usersEnvSchema>;
