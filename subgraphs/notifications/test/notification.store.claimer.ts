// A delivery worker in a process of its own, for the SQLite store's test of claims made truly at once: opens the
// store on the file given, waits for the start (so that two workers begin together), then claims batches until
// none is left and reports the ids it got.
// Arguments: <database file> <now, ISO-8601> <batch size>.
import { awaitStartSignal, reportResult } from '@aiva/shared/testing/racers';
import { openSqliteNotificationStore } from '../src/store/sqlite.js';

const [file, nowText, batchText] = process.argv.slice(2);
if (!file || !nowText || !batchText) throw new Error('usage: claimer <file> <now> <batch>');
const now = new Date(nowText);
const leaseUntil = new Date(now.getTime() + 60 * 60 * 1000);
const store = openSqliteNotificationStore({ file });
await awaitStartSignal();

const claimed: string[] = [];
for (;;) {
  const batch = await store.claimDueDeliveries(now, leaseUntil, Number(batchText));
  if (batch.length === 0) break;
  claimed.push(...batch.map((delivery) => delivery.id));
}
await store.close();
reportResult(claimed);
