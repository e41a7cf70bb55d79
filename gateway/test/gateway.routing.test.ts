import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EchoUnderTest,
  echoTypeDefs,
  type GatewayUnderTest,
  graphql,
  startEcho,
  startGatewayWith,
} from './helpers/echo-stack.js';

// A gateway that follows an orchestrator it has never reached routes to the supergraph's routing URLs, and
// keeps answering while it keeps trying (the orchestrator being up is not needed to serve).

/** A port on which nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let echo: EchoUnderTest;
let gateway: GatewayUnderTest;

beforeAll(async () => {
  echo = await startEcho();
  gateway = await startGatewayWith({
    subgraphs: [{ name: 'echo', url: echo.url, typeDefs: echoTypeDefs }],
    env: { ORCHESTRATOR_URL: `http://127.0.0.1:${await closedPort()}`, REGISTRY_TOKEN: 'unused' },
    discovery: true,
  });
});

afterAll(async () => {
  await gateway?.app.close();
  await echo?.server.close();
});

describe('a gateway whose orchestrator was never reached', () => {
  it('routes to the routing URLs of its supergraph and is ready', async () => {
    expect(gateway.app.router.followingTable).toBe(false);
    const before = echo.calls();
    const result = await graphql(gateway.url, '{ echo { authorization } }');
    expect(result.body).toEqual({ data: { echo: { authorization: null } } });
    expect(echo.calls()).toBe(before + 1);
    const ready = await fetch(`${gateway.base}/ready`);
    expect(ready.status).toBe(200);
    expect(gateway.app.router.endpoints('echo').map((e) => e.id)).toEqual(['static:echo']);
  });
});
