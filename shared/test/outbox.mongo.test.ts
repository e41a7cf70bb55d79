import { describe, expect, it } from 'vitest';
import {
  connectMongo,
  createMongoOutbox,
  createMongoProcessedEvents,
  setUpMongoStore,
} from '../src/store/mongo-kit.js';
import { describeMongo } from '../src/testing/mongo.js';
import { outboxContract } from './outbox.contract.js';

// Gated on MONGODB_URL (there is no MongoDB server on CI machines by default): the same outbox contract as SQLite,
// and runOnce inside the store's write.
describeMongo('MongoDB outbox and processed events', { dbPrefix: 'aiva_shared_outbox_test' }, (mongo) => {
  outboxContract('MongoDB', async () => {
    const connection = await connectMongo({ url: mongo.url, dbName: mongo.freshDbName() });
    const outbox = createMongoOutbox(connection);
    const kit = await setUpMongoStore(connection, outbox.models, (error) => error);
    return {
      outbox,
      write: (events) => kit.write((session) => outbox.write(events, session)),
      close: () => kit.close(),
    };
  });

  describe('runOnce', () => {
    it('runs the effect once per (consumer, event id), recorded in the same write', async () => {
      const connection = await connectMongo({ url: mongo.url, dbName: mongo.freshDbName() });
      const processed = createMongoProcessedEvents(connection);
      const kit = await setUpMongoStore(connection, [processed.model], (error) => error);
      try {
        let effects = 0;
        const run = (consumer: string, id: string) =>
          kit.write((session) =>
            processed.runOnce(session, consumer, id, async () => {
              effects++;
              return effects;
            }),
          );
        expect(await run('c', 'e1')).toEqual({ duplicate: false, result: 1 });
        expect(await run('c', 'e1')).toEqual({ duplicate: true });
        expect(await run('other', 'e1')).toEqual({ duplicate: false, result: 2 });
        expect(await processed.has('c', 'e1')).toBe(true);
        expect(await processed.has('c', 'e2')).toBe(false);
        // An effect that throws records nothing: the redelivery runs it again.
        await expect(
          kit.write((session) =>
            processed.runOnce(session, 'c', 'e3', async () => {
              throw new Error('boom');
            }),
          ),
        ).rejects.toThrow('boom');
        expect(await processed.has('c', 'e3')).toBe(false);
      } finally {
        await kit.close();
      }
    });
  });
});
