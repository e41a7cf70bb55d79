import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'graphql';
import { it } from 'vitest';
import { createLogger } from '../src/log.js';
import { createSubgraphServer } from '../src/server/subgraph-server.js';

it('dbg', async () => {
  const t0 = Date.now();
  const log = (m: string) => console.log(Date.now() - t0, m);
  const server = await createSubgraphServer({
    name: 'x', logger: createLogger('t', { level: process.env.DBG_LEVEL ?? 'silent' }),
    typeDefs: parse(`extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"]) type Query { slow: String }`),
    resolvers: { Query: { slow: async () => { log('resolver start'); await sleep(300); log('resolver end'); return 'ok'; } } },
    onClose: [async () => log('onClose')],
  });
  const url = await server.listen({ port: 0, host: '127.0.0.1' });
  const p = fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ slow }' }) })
    .then(async (r) => { log(`status ${r.status}`); log(await r.text()); }, (e) => log(`fetch err ${e}`));
  await sleep(100);
  log('close()');
  const c = server.close().then(() => log('closed'));
  await p;
  await Promise.race([c, sleep(3000).then(() => log('close still pending after 3s'))]);
  log(`connections? ${(server.app.server as any)._connections}`);
}, 10000);
