import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// A local server speaking OpenAI's wire format at `/v1` (as Ollama, LM Studio, vLLM and llama.cpp do for chat):
// - Chat Completions: streamed replies as server-sent `chat.completion.chunk`s, paced so a test can drop a client
//   mid-reply, with the usage chunk the client asks for;
// - when given the bytes to answer: image generations (`b64_json`), speech (the audio bytes) and transcriptions
//   (multipart in; JSON out, whose text says how many bytes of which type were heard).
// It records the requests, so tests see what the service sent.

export interface ChatServer {
  /** The base URL with `/v1`, for OPENAI_COMPATIBLE_BASE_URL or OPENAI_BASE_URL. */
  url: string;
  /** The JSON bodies of chat requests received, oldest first. */
  requests: Array<Record<string, unknown>>;
  /** The other requests: their path and JSON body (for a transcription: its form fields, the file's size and type). */
  calls: Array<{ path: string; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

export interface ChatServerOptions {
  deltas: string[];
  intervalMs?: number;
  /** The image every image generation answers (a real PNG); unset: 404. */
  image?: Uint8Array;
  /** The audio every speech request answers, and its type; unset: 404. */
  speech?: { bytes: Uint8Array; mimeType: string };
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

/** Answers the routes besides chat; false when the path is none of them (or its bytes were not given). */
async function answerOther(
  path: string,
  request: IncomingMessage,
  response: ServerResponse,
  options: ChatServerOptions,
  calls: ChatServer['calls'],
): Promise<boolean> {
  if (path === '/v1/images/generations' && options.image) {
    calls.push({ path, body: await bodyOf(request) });
    sendJson(response, 200, {
      created: 1_700_000_000,
      data: [{ b64_json: Buffer.from(options.image).toString('base64') }],
    });
    return true;
  }
  if (path === '/v1/audio/speech' && options.speech) {
    calls.push({ path, body: await bodyOf(request) });
    response.writeHead(200, { 'content-type': options.speech.mimeType });
    response.end(Buffer.from(options.speech.bytes));
    return true;
  }
  if (path === '/v1/audio/transcriptions') {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const form = await new Response(Buffer.concat(chunks), {
      headers: { 'content-type': String(request.headers['content-type']) },
    }).formData();
    const file = form.get('file');
    if (!(file instanceof Blob)) {
      sendJson(response, 400, { error: { message: 'file is required', type: 'invalid_request_error' } });
      return true;
    }
    calls.push({ path, body: { model: form.get('model'), fileSize: file.size, fileType: file.type } });
    sendJson(response, 200, {
      text: `heard ${file.size} bytes of ${file.type}`,
      language: 'english',
      duration: 2,
      segments: [],
    });
    return true;
  }
  return false;
}

async function bodyOf(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
}

export async function startChatServer(options: ChatServerOptions): Promise<ChatServer> {
  const requests: Array<Record<string, unknown>> = [];
  const calls: ChatServer['calls'] = [];
  const server: Server = createServer(async (request, response) => {
    const path = (request.url ?? '').split('?')[0] ?? '';
    if (request.method === 'POST' && (await answerOther(path, request, response, options, calls))) return;
    if (request.method !== 'POST' || path !== '/v1/chat/completions') {
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
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
