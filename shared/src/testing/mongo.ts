import { randomBytes } from 'node:crypto';
import { afterAll, describe } from 'vitest';

export interface MongoTestDatabases {
  /** `MONGODB_URL` (the suite only runs when it is set). */
  url: string;
  /** A database name of its own for one store (`<dbPrefix>_<run>_<n>`); dropped when the suite is done. */
  freshDbName(): string;
}

export interface DescribeMongoOptions {
  /** Prefix of the database names, e.g. `aiva_users_test`. */
  dbPrefix: string;
}

/**
 * Declares a suite that needs the MongoDB server named by `MONGODB_URL`; without the variable it is skipped
 * with a warning (there is no default server). Every store the suite opens gets its own database via
 * `freshDbName()`; all of them are dropped after the suite. `fn` must only register tests and hooks.
 */
export function describeMongo(
  name: string,
  options: DescribeMongoOptions,
  fn: (mongo: MongoTestDatabases) => void,
): void {
  const url = process.env.MONGODB_URL;
  if (!url) console.warn(`MONGODB_URL is not set: skipping the ${name} contract`);

  const runId = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const dbNames: string[] = [];

  describe.skipIf(!url)(name, () => {
    afterAll(async () => {
      if (!url || dbNames.length === 0) return;
      // Loaded here so that importing the test kit does not load mongoose.
      const { default: mongoose } = await import('mongoose');
      const admin = await mongoose.createConnection(url).asPromise();
      try {
        for (const dbName of dbNames) await admin.useDb(dbName, { useCache: false }).dropDatabase();
      } finally {
        await admin.close();
      }
    });

    fn({
      url: url ?? '',
      freshDbName() {
        const dbName = `${options.dbPrefix}_${runId}_${dbNames.length + 1}`;
        dbNames.push(dbName);
        return dbName;
      },
    });
  });
}
