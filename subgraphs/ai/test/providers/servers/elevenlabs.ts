import type { ServerResponse } from 'node:http';
import {
  FakeProviderServer,
  jsonOf,
  MP3_BYTES,
  type RecordedRequest,
  sendBytes,
  sendJson,
} from './harness.js';

/** ElevenLabs' error body: `{ detail: { status, message } }`. */
function elevenLabsError(status: number): unknown {
  const names: Record<number, string> = { 401: 'invalid_api_key', 429: 'too_many_concurrent_requests' };
  return { detail: { status: names[status] ?? 'error', message: `fake ElevenLabs error ${status}` } };
}

/** `POST /v1/text-to-speech/<voice>?output_format=…`: JSON `{ text, model_id }` in, audio bytes out. */
function textToSpeech(request: RecordedRequest, response: ServerResponse) {
  const body = jsonOf(request);
  if (typeof body.text !== 'string' || typeof body.model_id !== 'string') {
    sendJson(response, 422, {
      detail: { status: 'invalid_request', message: 'text and model_id are required' },
    });
    return;
  }
  sendBytes(response, 'audio/mpeg', MP3_BYTES);
}

/** A fake of ElevenLabs' API: text-to-speech. */
export function elevenLabsServer(): FakeProviderServer {
  return new FakeProviderServer(
    [{ method: 'POST', path: /^\/v1\/text-to-speech\/[^/]+$/, handle: textToSpeech }],
    elevenLabsError,
  );
}
