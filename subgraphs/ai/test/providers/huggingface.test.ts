import { expect } from 'vitest';
import { KEYS } from './fixtures.js';
import { describeChatContract, expectBearer } from './models.contract.js';
import { jsonOf } from './servers/harness.js';
import { HUGGINGFACE_DELTAS, huggingFaceServer } from './servers/huggingface.js';

/**
 * Hugging Face through @ai-sdk/huggingface v1, which speaks the Responses API (`POST /v1/responses`) of the
 * inference router, not chat completions.
 */
describeChatContract({
  provider: 'huggingface',
  model: 'meta-llama/Llama-3.1-8B-Instruct',
  fake: () => huggingFaceServer(),
  env: (url) => ({
    HUGGINGFACE_API_KEY: KEYS.huggingface,
    HUGGINGFACE_BASE_URL: `${url}/v1`,
    AI_CHAT_MODELS: 'huggingface:meta-llama/Llama-3.1-8B-Instruct',
  }),
  path: /\/v1\/responses$/,
  deltas: HUGGINGFACE_DELTAS,
  usage: { inputTokens: 7, outputTokens: HUGGINGFACE_DELTAS.length },
  promptIn: (body) => JSON.stringify(body.input),
  checkRequest: (request) => {
    expectBearer(request, KEYS.huggingface);
    expect(jsonOf(request)).toMatchObject({ model: 'meta-llama/Llama-3.1-8B-Instruct', stream: true });
  },
});
