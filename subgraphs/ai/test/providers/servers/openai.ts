import type { ServerResponse } from 'node:http';
import {
  FakeProviderServer,
  jsonOf,
  MP3_BYTES,
  PNG_BYTES,
  type RecordedRequest,
  type RouteContext,
  sendBytes,
  sendJson,
  sendSse,
  stopOf,
  vectorOf,
} from './harness.js';

/** What the OpenAI-shaped fake answers. */
export interface OpenAIServerOptions {
  /** The streamed reply's deltas, in order. */
  deltas?: string[];
  /** Dimensions of the embedding vectors. */
  dimensions?: number;
  promptTokens?: number;
}

export const OPENAI_DELTAS = ['Hello', ', ', 'world', '!'];

/** OpenAI's error body. For 401 it repeats the key it got, as OpenAI's message does (ours must not). */
function openAIError(status: number, request: RecordedRequest): unknown {
  const key = String(request.headers.authorization ?? '').replace(/^Bearer /, '');
  const messages: Record<number, [string, string]> = {
    401: [
      `Incorrect API key provided: ${key}. You can find your API key at https://platform.openai.com.`,
      'invalid_api_key',
    ],
    404: ['The model does not exist or you do not have access to it.', 'model_not_found'],
    429: ['Rate limit reached for requests. Please try again in 1s.', 'rate_limit_exceeded'],
  };
  const [message, code] = messages[status] ?? [`The server had an error (status ${status}).`, 'server_error'];
  return {
    error: { message, type: status === 429 ? 'requests' : 'invalid_request_error', param: null, code },
  };
}

/** `POST /v1/chat/completions` with `stream: true`: chunks, a usage chunk (`stream_options.include_usage`), [DONE]. */
function chatCompletions(options: Required<OpenAIServerOptions>) {
  return async (request: RecordedRequest, response: ServerResponse, context: RouteContext) => {
    const body = jsonOf(request);
    const model = String(body.model);
    const base = { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1_700_000_000, model };
    if (body.stream !== true) {
      const text = options.deltas.join('');
      sendJson(response, 200, {
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
        usage: usageOf(options),
      });
      return;
    }
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
      JSON.stringify({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
    const events = options.deltas.map((content, i) => ({
      data: chunk(i === 0 ? { role: 'assistant', content } : { content }),
    }));
    events.push({ data: chunk({}, 'stop') });
    const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage;
    if (includeUsage)
      events.push({ data: JSON.stringify({ ...base, choices: [], usage: usageOf(options) }) });
    events.push({ data: '[DONE]' });
    await sendSse(response, events, stopOf(context, 0));
  };
}

function usageOf(options: Required<OpenAIServerOptions>) {
  const completion = options.deltas.length;
  return {
    prompt_tokens: options.promptTokens,
    completion_tokens: completion,
    total_tokens: options.promptTokens + completion,
  };
}

/** `POST /v1/embeddings`: one vector per input, in order. */
function embeddings(options: Required<OpenAIServerOptions>) {
  return (request: RecordedRequest, response: ServerResponse) => {
    const body = jsonOf(request);
    const inputs = (Array.isArray(body.input) ? body.input : [body.input]) as string[];
    sendJson(response, 200, {
      object: 'list',
      model: body.model,
      data: inputs.map((text, index) => ({
        object: 'embedding',
        index,
        embedding: vectorOf(text, options.dimensions),
      })),
      usage: { prompt_tokens: inputs.length * 3, total_tokens: inputs.length * 3 },
    });
  };
}

/** `POST /v1/images/generations` answering `b64_json` (Together AI's route and shape too). */
function imageGenerations(request: RecordedRequest, response: ServerResponse) {
  jsonOf(request);
  sendJson(response, 200, {
    created: 1_700_000_000,
    data: [{ b64_json: Buffer.from(PNG_BYTES).toString('base64'), revised_prompt: null }],
  });
}

/** `POST /v1/audio/transcriptions`: multipart in (file + model), JSON out. */
async function transcriptions(request: RecordedRequest, response: ServerResponse) {
  const form = await new Response(new Uint8Array(request.body), {
    headers: { 'content-type': String(request.headers['content-type']) },
  }).formData();
  const file = form.get('file');
  if (!(file instanceof Blob) || !form.get('model')) {
    sendJson(response, 400, {
      error: { message: 'file and model are required', type: 'invalid_request_error' },
    });
    return;
  }
  sendJson(response, 200, {
    text: `heard ${file.size} bytes of ${file.type}`,
    language: 'english',
    duration: 2.5,
    segments: [],
  });
}

/** `POST /v1/audio/speech`: audio bytes out. */
function speech(request: RecordedRequest, response: ServerResponse) {
  const body = jsonOf(request);
  if (!body.input || !body.voice) {
    sendJson(response, 400, {
      error: { message: 'input and voice are required', type: 'invalid_request_error' },
    });
    return;
  }
  sendBytes(response, 'audio/mpeg', MP3_BYTES);
}

/**
 * A fake speaking OpenAI's REST wire format under `/v1`: chat completions (SSE), embeddings, image
 * generations, transcriptions and speech. Together AI, Ollama, LM Studio, vLLM and llama.cpp serve the same
 * shapes under their `/v1`, so this is their fake too.
 */
export function openAIServer(options: OpenAIServerOptions = {}): FakeProviderServer {
  const resolved: Required<OpenAIServerOptions> = {
    deltas: options.deltas ?? OPENAI_DELTAS,
    dimensions: options.dimensions ?? 8,
    promptTokens: options.promptTokens ?? 12,
  };
  return new FakeProviderServer(
    [
      { method: 'POST', path: /^\/v1\/chat\/completions$/, handle: chatCompletions(resolved) },
      { method: 'POST', path: /^\/v1\/embeddings$/, handle: embeddings(resolved) },
      { method: 'POST', path: /^\/v1\/images\/generations$/, handle: imageGenerations },
      { method: 'POST', path: /^\/v1\/audio\/transcriptions$/, handle: transcriptions },
      { method: 'POST', path: /^\/v1\/audio\/speech$/, handle: speech },
    ],
    openAIError,
  );
}
