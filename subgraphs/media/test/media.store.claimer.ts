// A processing worker in a process of its own, for the SQLite store's test of claims made truly at once: opens
// the store on the file given, waits for the start (so that two workers begin together), then claims batches
// until none is left and reports the ids it got.
// Arguments: <database file> <now, ISO-8601> <lease token>.
import { awaitStartSignal, reportResult } from '@aiva/shared/testing/racers';
import { openSqliteMediaStore } from '../src/store/sqlite.js';

const [file, nowText, token] = process.argv.slice(2);
if (!file || !nowText || !token) throw new Error('usage: claimer <file> <now> <token>');
const now = new Date(nowText);
const leaseUntil = new Date(now.getTime() + 60 * 60 * 1000);
const store = openSqliteMediaStore({ file });
await awaitStartSignal();

const claimed: string[] = [];
for (;;) {
  const batch = await store.claimDue(now, leaseUntil, token, 2);
  if (batch.length === 0) break;
  if (batch.some((record) => record.leaseToken !== token)) throw new Error('claimed under another token');
  claimed.push(...batch.map((record) => record.id));
}
await store.close();
reportResult(claimed);
