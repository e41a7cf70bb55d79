import { readFile } from 'node:fs/promises';
import { bearer, graphql } from '@aiva/shared/testing';
import { startChatServer } from '../helpers/openai-chat-server.js';
import { startSystem } from '../system/helpers/system.js';

/**
 * The AI subgraph measured (`pnpm bench:ai`), AIVA as `pnpm start` runs it with a local OpenAI-compatible chat
 * server (no network, no model: what is measured is AIVA's path): BENCH_SENDS messages one after the other, each
 * timed from the `sendMessage` request to the first `delta` event of its stream read through the gateway, and to
 * the `done` event; then the AI process's RSS.
 */
const SENDS = Number(process.env.BENCH_SENDS ?? 100);
const DELTAS = Array.from({ length: 50 }, (_, i) => `token${i} `);

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

const chat = await startChatServer({ deltas: DELTAS });
const system = await startSystem({
  env: {
    LOG_LEVEL: 'warn',
    OPENAI_COMPATIBLE_BASE_URL: chat.url,
    AI_CHAT_MODELS: 'local:bench',
    AI_DAILY_REQUESTS: '1000000',
    AUTH_REQUESTS_PER_ADDRESS: '1000000',
  },
});
try {
  const signedUp = await graphql<{ signUp: { accessToken: string } }>(
    system.gatewayUrl,
    'mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }',
    {
      input: {
        email: 'bench-ai@example.test',
        password: 'a long password',
        username: 'benchai',
        firstName: 'Bench',
        lastName: 'AI',
      },
    },
  );
  const token = signedUp.body.data?.signUp.accessToken ?? '';
  const auth = bearer(token);
  const created = await graphql<{ createConversation: { id: string } }>(
    system.gatewayUrl,
    'mutation { createConversation { id } }',
    {},
    auth,
  );
  const conversationId = created.body.data?.createConversation.id ?? '';
  const firstToken: number[] = [];
  const whole: number[] = [];
  for (let i = 0; i < SENDS; i++) {
    const started = performance.now();
    const sent = await graphql<{ sendMessage: { stream: { url: string } } }>(
      system.gatewayUrl,
      'mutation($c: ID!, $m: String!) { sendMessage(conversationId: $c, content: $m) { stream { url } } }',
      { c: conversationId, m: `Question ${i}` },
      auth,
    );
    const url = sent.body.data?.sendMessage.stream.url;
    if (!url) throw new Error(`sendMessage: ${JSON.stringify(sent.body.errors)}`);
    const response = await fetch(url, { headers: auth });
    const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    let first = 0;
    for (;;) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) break;
      text += chunk.value;
      if (!first && text.includes('event: delta')) first = performance.now() - started;
      if (text.includes('event: done') || text.includes('event: error')) break;
    }
    await reader?.cancel().catch(() => {});
    if (!text.includes('event: done')) throw new Error('the stream did not end with done');
    firstToken.push(first);
    whole.push(performance.now() - started);
  }
  firstToken.sort((a, b) => a - b);
  whole.sort((a, b) => a - b);
  const status = (await (await fetch(`${system.orchestratorUrl}/v1/status`)).json()) as {
    processes: Array<{ service: string; pid: number }>;
  };
  const pid = status.processes.find((p) => p.service === 'ai')?.pid;
  const rss = Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  console.log(
    `\nAI replies through the gateway (${SENDS} one after the other, ${DELTAS.length} pieces each):`,
  );
  console.log(
    `  time to first streamed piece: p50 ${percentile(firstToken, 50).toFixed(1)} ms, p99 ${percentile(firstToken, 99).toFixed(1)} ms`,
  );
  console.log(
    `  time to the end of the reply: p50 ${percentile(whole, 50).toFixed(1)} ms, p99 ${percentile(whole, 99).toFixed(1)} ms`,
  );
  console.log(`  ai process RSS afterwards: ${rss.toFixed(0)} MB`);
} finally {
  await system.stop('SIGKILL');
  await chat.close();
}
