// A delivery worker in a process of its own, for the SQLite store's test of claims made truly at once: opens the
// store on the file given, says `ready`, reads a start time (epoch ms) on stdin and waits for it (so that two
// workers begin together), then claims batches until none is left and prints the ids it got as JSON.
// Arguments: <database file> <now, ISO-8601> <batch size>.
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { openSqliteNotificationStore } from '../src/store/sqlite.js';

const [file, nowText, batchText] = process.argv.slice(2);
if (!file || !nowText || !batchText) throw new Error('usage: claimer <file> <now> <batch>');
const now = new Date(nowText);
const leaseUntil = new Date(now.getTime() + 60 * 60 * 1000);
const store = openSqliteNotificationStore({ file });
const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
const [line] = (await once(lines, 'line')) as [string];
lines.close();
const startAt = Number(line);
await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - Date.now() - 5)));
while (Date.now() < startAt) {
  // the last few milliseconds spun, for a close start
}

const claimed: string[] = [];
for (;;) {
  const batch = await store.claimDueDeliveries(now, leaseUntil, Number(batchText));
  if (batch.length === 0) break;
  claimed.push(...batch.map((delivery) => delivery.id));
}
await store.close();
process.stdout.write(`${JSON.stringify(claimed)}\n`);
