import type { ServerResponse } from 'node:http';
import {
  FakeProviderServer,
  jsonOf,
  type RecordedRequest,
  type RouteContext,
  sendJson,
  sendSse,
  stopOf,
  vectorOf,
} from './harness.js';

export interface GoogleServerOptions {
  deltas?: string[];
  dimensions?: number;
  promptTokens?: number;
}

export const GOOGLE_DELTAS = ['Bonjour', ' le', ' monde'];

/** Google's error status names, by HTTP status. */
const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

/** Google's error body: `{ error: { code, message, status } }`. */
function googleError(status: number): unknown {
  return {
    error: {
      code: status,
      message: `fake Google error ${status}`,
      status: STATUS_NAMES[status] ?? 'UNKNOWN',
    },
  };
}

/** The model of a `/v1beta/models/<model>:<method>` path. */
function modelOf(request: RecordedRequest): string {
  return /\/models\/([^/:]+):/.exec(request.path)?.[1] ?? 'unknown';
}

/** `POST /v1beta/models/<model>:streamGenerateContent?alt=sse`: one candidate chunk per delta, usage on each. */
function streamGenerateContent(options: Required<GoogleServerOptions>) {
  return async (request: RecordedRequest, response: ServerResponse, context: RouteContext) => {
    jsonOf(request);
    if (request.query.get('alt') !== 'sse') {
      sendJson(response, 400, googleError(400));
      return;
    }
    const last = options.deltas.length - 1;
    const events = options.deltas.map((text, i) => ({
      data: JSON.stringify({
        candidates: [
          {
            content: { parts: [{ text }], role: 'model' },
            ...(i === last ? { finishReason: 'STOP' } : {}),
            index: 0,
          },
        ],
        usageMetadata: {
          promptTokenCount: options.promptTokens,
          ...(i === last ? { candidatesTokenCount: options.deltas.length } : {}),
          totalTokenCount: options.promptTokens + (i === last ? options.deltas.length : 0),
        },
        modelVersion: modelOf(request),
        responseId: 'fake-response',
      }),
    }));
    await sendSse(response, events, stopOf(context, 0));
  };
}

/** `POST /v1beta/models/<model>:batchEmbedContents`: one embedding per request, in order. */
function batchEmbedContents(options: Required<GoogleServerOptions>) {
  return (request: RecordedRequest, response: ServerResponse) => {
    const requests = jsonOf(request).requests as Array<{ content: { parts: Array<{ text: string }> } }>;
    sendJson(response, 200, {
      embeddings: requests.map((r) => ({
        values: vectorOf(r.content.parts[0]?.text ?? '', options.dimensions),
      })),
    });
  };
}

/** `POST /v1beta/models/<model>:embedContent` (the SDK's path for a single text). */
function embedContent(options: Required<GoogleServerOptions>) {
  return (request: RecordedRequest, response: ServerResponse) => {
    const content = jsonOf(request).content as { parts: Array<{ text: string }> };
    sendJson(response, 200, {
      embedding: { values: vectorOf(content.parts[0]?.text ?? '', options.dimensions) },
    });
  };
}

/** A fake of the Gemini API (`/v1beta`): streamed generation as SSE, and embeddings. */
export function googleServer(options: GoogleServerOptions = {}): FakeProviderServer {
  const resolved: Required<GoogleServerOptions> = {
    deltas: options.deltas ?? GOOGLE_DELTAS,
    dimensions: options.dimensions ?? 6,
    promptTokens: options.promptTokens ?? 9,
  };
  return new FakeProviderServer(
    [
      {
        method: 'POST',
        path: /^\/v1beta\/models\/[^/:]+:streamGenerateContent$/,
        handle: streamGenerateContent(resolved),
      },
      {
        method: 'POST',
        path: /^\/v1beta\/models\/[^/:]+:batchEmbedContents$/,
        handle: batchEmbedContents(resolved),
      },
      { method: 'POST', path: /^\/v1beta\/models\/[^/:]+:embedContent$/, handle: embedContent(resolved) },
    ],
    googleError,
  );
}
