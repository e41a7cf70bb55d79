// Hive Gateway (The Guild's federation gateway) on a node HTTP server, for side-by-side benchmarks: the supergraph
// at SUPERGRAPH_PATH (default: the committed one), served with the runtime's defaults (its in-flight deduplication
// of identical subgraph fetches included), the caller's Authorization header passed on to the subgraphs, nothing
// else. Prints one JSON line `{ "url": ... }` once listening; stops on SIGTERM or SIGINT.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGatewayRuntime } from '@graphql-hive/gateway-runtime';

const root = fileURLToPath(new URL('../..', import.meta.url));
const gateway = createGatewayRuntime({
  supergraph: process.env.SUPERGRAPH_PATH ?? join(root, 'supergraph.graphql'),
  propagateHeaders: {
    fromClientToSubgraphs: ({ request }) => ({ authorization: request.headers.get('authorization') }),
  },
});
const server = createServer(gateway);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/graphql` })}\n`);

const stop = async () => {
  server.close();
  server.closeAllConnections();
  await gateway.dispose();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
