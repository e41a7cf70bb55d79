import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { createSubgraphServer, type GraphQLHttpServer } from '@aiva/shared';
import { parse } from 'graphql';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayUnderTest, silentLogger, startGatewayWith } from './helpers/echo-stack.js';

// Response compression at the gateway, over real HTTP (undici's `request` neither asks for nor decodes an
// encoding on its own, so each test says what it accepts and sees the bytes as sent).

const blobTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
  type Query { blob(size: Int!): String! }
`);

let subgraph: GraphQLHttpServer;
let gateway: GatewayUnderTest;
let uncompressed: GatewayUnderTest;

beforeAll(async () => {
  subgraph = await createSubgraphServer({
    name: 'blob',
    logger: silentLogger,
    typeDefs: blobTypeDefs,
    resolvers: { Query: { blob: (_: unknown, args: { size: number }) => 'aiva '.repeat(args.size / 5) } },
  });
  const url = `${await subgraph.listen({ port: 0, host: '127.0.0.1' })}/graphql`;
  const subgraphs = [{ name: 'blob', url, typeDefs: blobTypeDefs }];
  gateway = await startGatewayWith({ subgraphs });
  uncompressed = await startGatewayWith({ subgraphs, env: { COMPRESSION_THRESHOLD_BYTES: '0' } });
});

afterAll(async () => {
  await gateway?.app.close();
  await uncompressed?.app.close();
  await subgraph?.close();
});

/** POSTs `{ blob(size) }` with these headers; the raw answer. */
async function blob(url: string, size: number, headers: Record<string, string> = {}) {
  const response = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query: `{ blob(size: ${size}) }` }),
  });
  return {
    status: response.statusCode,
    encoding: response.headers['content-encoding'],
    vary: response.headers.vary,
    bytes: Buffer.from(await response.body.arrayBuffer()),
  };
}

const expected = (size: number) => ({ data: { blob: 'aiva '.repeat(size / 5) } });

describe('response compression', () => {
  it('compresses a large response with br or gzip, as accept-encoding asks, to the same JSON', async () => {
    const decoders = { br: brotliDecompressSync, gzip: gunzipSync };
    for (const [acceptEncoding, encoding] of [
      ['br', 'br'],
      ['gzip', 'gzip'],
      ['gzip, deflate, br', 'br'],
      ['gzip;q=1, br;q=0.5', 'gzip'],
    ] as const) {
      const result = await blob(gateway.url, 20_000, { 'accept-encoding': acceptEncoding });
      expect(result.status).toBe(200);
      expect(result.encoding, acceptEncoding).toBe(encoding);
      expect(result.vary).toMatch(/accept-encoding/i);
      expect(result.bytes.length).toBeLessThan(20_000);
      expect(JSON.parse(decoders[encoding](result.bytes).toString('utf8'))).toEqual(expected(20_000));
    }
  });

  it('sends a response below the threshold as it is', async () => {
    const result = await blob(gateway.url, 100, { 'accept-encoding': 'br, gzip' });
    expect(result.encoding).toBeUndefined();
    expect(JSON.parse(result.bytes.toString('utf8'))).toEqual(expected(100));
  });

  it('sends identity without accept-encoding, or with one it does not offer', async () => {
    const cases: Array<Record<string, string>> = [
      {},
      { 'accept-encoding': 'identity' },
      { 'accept-encoding': 'deflate' },
    ];
    for (const headers of cases) {
      const result = await blob(gateway.url, 20_000, headers);
      expect(result.encoding).toBeUndefined();
      expect(JSON.parse(result.bytes.toString('utf8'))).toEqual(expected(20_000));
    }
  });

  it('is off with COMPRESSION_THRESHOLD_BYTES=0', async () => {
    const result = await blob(uncompressed.url, 20_000, { 'accept-encoding': 'br, gzip' });
    expect(result.encoding).toBeUndefined();
    expect(JSON.parse(result.bytes.toString('utf8'))).toEqual(expected(20_000));
  });

  it('compresses /metrics for scrapers that ask', async () => {
    const response = await request(`${gateway.base}/metrics`, { headers: { 'accept-encoding': 'gzip' } });
    expect(response.headers['content-encoding']).toBe('gzip');
    const text = gunzipSync(Buffer.from(await response.body.arrayBuffer())).toString('utf8');
    expect(text).toContain('# TYPE');
  });
});
