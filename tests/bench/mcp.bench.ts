import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { startSystem } from '../system/helpers/system.js';

/**
 * MCP figures (`pnpm bench:mcp`), AIVA as `pnpm start` runs it: the size of `search-schema` answers for three
 * typical questions against the whole supergraph SDL (what a model would otherwise read), and the latency of tool
 * calls over Streamable HTTP (BENCH_CALLS sequential calls each of `search-schema` and `execute`).
 */
const CALLS = Number(process.env.BENCH_CALLS ?? 200);
const QUESTIONS = ['reset my password', 'unread notifications', 'active sessions of a user'];

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
const textOf = (result: CallToolResult) =>
  result.content.map((part) => (part.type === 'text' ? part.text : '')).join('\n');

const system = await startSystem({ env: { LOG_LEVEL: 'warn' } });
try {
  const client = new Client({ name: 'aiva-bench', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${system.ports.gateway}/mcp`)),
  );
  const schema = await client.readResource({ uri: 'supergraph://schema' });
  const sdlBytes = Buffer.byteLength(String((schema.contents[0] as { text: string }).text));
  console.log('\n### MCP\n');
  console.log(`| question | search-schema answer (bytes) | whole SDL (bytes) | share |`);
  console.log('| --- | ---: | ---: | ---: |');
  for (const query of QUESTIONS) {
    const answer = textOf(
      (await client.callTool({ name: 'search-schema', arguments: { query } })) as CallToolResult,
    );
    const bytes = Buffer.byteLength(answer);
    console.log(`| "${query}" | ${bytes} | ${sdlBytes} | ${((bytes / sdlBytes) * 100).toFixed(0)} % |`);
  }
  console.log('\n| tool call over HTTP | p50 (ms) | p99 (ms) |');
  console.log('| --- | ---: | ---: |');
  for (const [name, args] of [
    ['search-schema', { query: 'notifications' }],
    ['execute', { operation: '{ me { id } }' }],
  ] as const) {
    const times: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const started = performance.now();
      await client.callTool({ name, arguments: args });
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    console.log(
      `| \`${name}\` (${CALLS} calls) | ${percentile(times, 50).toFixed(1)} | ${percentile(times, 99).toFixed(1)} |`,
    );
  }
  await client.close();
} finally {
  await system.stop('SIGINT');
}
