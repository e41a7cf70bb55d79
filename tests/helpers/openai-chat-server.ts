import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

// A local server speaking OpenAI's Chat Completions wire format (as Ollama, LM Studio, vLLM and llama.cpp do at
// `/v1`): streamed replies as server-sent `chat.completion.chunk`s, paced so a test can drop a client mid-reply,
// with the usage chunk the client asks for. It records the requests, so tests see what the service sent.

export interface ChatServer {
  /** The base URL with `/v1`, for OPENAI_COMPATIBLE_BASE_URL or OPENAI_BASE_URL. */
  url: string;
  /** The JSON bodies received, oldest first. */
  requests: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

async function bodyOf(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
}

export async function startChatServer(options: {
  deltas: string[];
  intervalMs?: number;
}): Promise<ChatServer> {
  const requests: Array<Record<string, unknown>> = [];
  const server: Server = createServer(async (request, response) => {
    if (request.method !== 'POST' || request.url !== '/v1/chat/completions') {
      response.writeHead(404, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }));
      return;
    }
    const body = await bodyOf(request);
    requests.push(body);
    const base = {
      id: 'chatcmpl-test',
      object: 'chat.completion.chunk',
      created: 1_700_000_000,
      model: body.model,
    };
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const send = (data: unknown) => response.write(`data: ${JSON.stringify(data)}\n\n`);
    for (const [i, content] of options.deltas.entries()) {
      if (response.destroyed) return;
      send({
        ...base,
        choices: [
          { index: 0, delta: i === 0 ? { role: 'assistant', content } : { content }, finish_reason: null },
        ],
      });
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 0));
    }
    send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    send({
      ...base,
      choices: [],
      usage: {
        prompt_tokens: 20,
        completion_tokens: options.deltas.length,
        total_tokens: 20 + options.deltas.length,
      },
    });
    response.end('data: [DONE]\n\n');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
