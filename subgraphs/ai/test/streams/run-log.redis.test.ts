import { randomUUID } from 'node:crypto';
import { describeInfra } from '@aiva/shared/testing';
import { connectRedisRunLog } from '../../src/streams/redis-run-log.js';
import { runLogContract } from './run-log.contract.js';

// Needs Redis (REDIS_URL, default redis://127.0.0.1:6379). Keys get a prefix unique to the run.
await describeInfra('Redis run log', { envVar: 'REDIS_URL', defaultUrl: 'redis://127.0.0.1:6379' }, (url) => {
  runLogContract('redis', async () => {
    const keyPrefix = `aiva-test:${randomUUID()}:ai:`;
    return {
      log: await connectRedisRunLog({ url, keyPrefix }),
      peer: () => connectRedisRunLog({ url, keyPrefix }),
      cleanup: async () => {},
    };
  });
});
