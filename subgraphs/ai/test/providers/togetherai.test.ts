import { expect } from 'vitest';
import { KEYS } from './fixtures.js';
import {
  describeChatContract,
  describeEmbeddingContract,
  describeImageContract,
  expectBearer,
} from './models.contract.js';
import { jsonOf, type RecordedRequest } from './servers/harness.js';
import { OPENAI_DELTAS, openAIServer } from './servers/openai.js';

/** Together AI through @ai-sdk/togetherai: OpenAI-compatible chat and embeddings, its own image request. */
const together = (variable: string, model: string) => (url: string) => ({
  TOGETHER_AI_API_KEY: KEYS.togetherai,
  TOGETHER_AI_BASE_URL: `${url}/v1`,
  [variable]: `togetherai:${model}`,
});
const withKey = (request: RecordedRequest) => expectBearer(request, KEYS.togetherai);

describeChatContract({
  provider: 'togetherai',
  model: 'meta-llama/Llama-3.3-70B-Instruct-Turbo',
  fake: () => openAIServer(),
  env: together('AI_CHAT_MODELS', 'meta-llama/Llama-3.3-70B-Instruct-Turbo'),
  path: /\/chat\/completions$/,
  deltas: OPENAI_DELTAS,
  usage: { inputTokens: 12, outputTokens: OPENAI_DELTAS.length },
  promptIn: (body) => JSON.stringify(body.messages),
  checkRequest: (request) => {
    withKey(request);
    expect(jsonOf(request)).toMatchObject({ model: 'meta-llama/Llama-3.3-70B-Instruct-Turbo', stream: true });
  },
});

describeEmbeddingContract({
  provider: 'togetherai',
  model: 'BAAI/bge-base-en-v1.5',
  fake: () => openAIServer({ dimensions: 5 }),
  env: together('AI_EMBEDDING_MODELS', 'BAAI/bge-base-en-v1.5'),
  path: /\/embeddings$/,
  dimensions: 5,
  checkRequest: withKey,
});

describeImageContract({
  provider: 'togetherai',
  model: 'black-forest-labs/FLUX.1-schnell',
  fake: () => openAIServer(),
  env: together('AI_IMAGE_MODELS', 'black-forest-labs/FLUX.1-schnell'),
  path: /\/images\/generations$/,
  checkRequest: (request) => {
    withKey(request);
    expect(jsonOf(request)).toMatchObject({ width: 512, height: 512, response_format: 'base64' });
  },
});
