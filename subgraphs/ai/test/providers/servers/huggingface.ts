import type { ServerResponse } from 'node:http';
import {
  FakeProviderServer,
  jsonOf,
  type RecordedRequest,
  type RouteContext,
  sendSse,
  stopOf,
} from './harness.js';

export interface HuggingFaceServerOptions {
  deltas?: string[];
  promptTokens?: number;
}

export const HUGGINGFACE_DELTAS = ['Hallo', ' Welt'];

/** The OpenAI-compatible error body Hugging Face's router answers with. */
function huggingFaceError(status: number): unknown {
  return {
    error: { message: `fake Hugging Face error ${status}`, type: 'invalid_request_error', code: status },
  };
}

/**
 * `POST /v1/responses` with `stream: true`: the Responses API events @ai-sdk/huggingface reads
 * (`response.created`, `response.output_item.added`, `response.output_text.delta`…, `response.output_item.done`,
 * `response.completed` with usage).
 */
function responses(options: Required<HuggingFaceServerOptions>) {
  return async (request: RecordedRequest, response: ServerResponse, context: RouteContext) => {
    const body = jsonOf(request);
    const model = String(body.model);
    const text = options.deltas.join('');
    const item = { type: 'message', id: 'msg_fake', role: 'assistant' };
    const done = { ...item, status: 'completed', content: [{ type: 'output_text', text, annotations: [] }] };
    let sequence = 0;
    const event = (type: string, fields: Record<string, unknown>) => ({
      event: type,
      data: JSON.stringify({ type, ...fields, sequence_number: sequence++ }),
    });
    const completed = {
      id: 'resp_fake',
      object: 'response',
      created_at: 1_700_000_000,
      status: 'completed',
      model,
      error: null,
      instructions: null,
      max_output_tokens: null,
      metadata: null,
      tool_choice: 'auto',
      tools: [],
      temperature: 1,
      top_p: 1,
      incomplete_details: null,
      usage: {
        input_tokens: options.promptTokens,
        output_tokens: options.deltas.length,
        total_tokens: options.promptTokens + options.deltas.length,
      },
      output: [done],
      output_text: text,
    };
    const deltas = options.deltas.map((delta) =>
      event('response.output_text.delta', { item_id: item.id, output_index: 0, content_index: 0, delta }),
    );
    const prelude = [
      event('response.created', {
        response: {
          id: 'resp_fake',
          object: 'response',
          created_at: 1_700_000_000,
          status: 'in_progress',
          model,
        },
      }),
      event('response.output_item.added', {
        output_index: 0,
        item: { ...item, status: 'in_progress', content: [] },
      }),
    ];
    const events = [
      ...prelude,
      ...deltas,
      event('response.output_item.done', { output_index: 0, item: done }),
      event('response.completed', { response: completed }),
    ];
    // A cut stream ends right after its first delta (the prelude carries no text).
    await sendSse(response, events, stopOf(context, prelude.length));
  };
}

/** A fake of Hugging Face's inference router (`/v1`), Responses API as @ai-sdk/huggingface v1 uses it. */
export function huggingFaceServer(options: HuggingFaceServerOptions = {}): FakeProviderServer {
  const resolved: Required<HuggingFaceServerOptions> = {
    deltas: options.deltas ?? HUGGINGFACE_DELTAS,
    promptTokens: options.promptTokens ?? 7,
  };
  return new FakeProviderServer(
    [{ method: 'POST', path: /^\/v1\/responses$/, handle: responses(resolved) }],
    huggingFaceError,
  );
}
