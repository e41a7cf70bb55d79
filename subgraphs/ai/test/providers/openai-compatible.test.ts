import { expect } from 'vitest';
import { describeChatContract, describeEmbeddingContract } from './models.contract.js';
import { jsonOf } from './servers/harness.js';
import { OPENAI_DELTAS, openAIServer } from './servers/openai.js';

/**
 * A local OpenAI-compatible server (Ollama's `/v1` shape) through @ai-sdk/openai-compatible, named by
 * OPENAI_COMPATIBLE_NAME, without a key, with an Ollama model tag that holds a colon.
 */
const ollama = (variable: string, model: string) => (url: string) => ({
  OPENAI_COMPATIBLE_BASE_URL: `${url}/v1`,
  OPENAI_COMPATIBLE_NAME: 'ollama',
  [variable]: `ollama:${model}`,
});

describeChatContract({
  provider: 'ollama',
  model: 'llama3.2:3b',
  fake: () => openAIServer(),
  env: ollama('AI_CHAT_MODELS', 'llama3.2:3b'),
  path: /^\/v1\/chat\/completions$/,
  deltas: OPENAI_DELTAS,
  usage: { inputTokens: 12, outputTokens: OPENAI_DELTAS.length },
  promptIn: (body) => JSON.stringify(body.messages),
  checkRequest: (request) => {
    expect(request.headers.authorization).toBeUndefined();
    expect(jsonOf(request)).toMatchObject({
      model: 'llama3.2:3b',
      stream: true,
      stream_options: { include_usage: true },
    });
  },
});

describeEmbeddingContract({
  provider: 'ollama',
  model: 'nomic-embed-text',
  fake: () => openAIServer({ dimensions: 4 }),
  env: ollama('AI_EMBEDDING_MODELS', 'nomic-embed-text'),
  path: /^\/v1\/embeddings$/,
  dimensions: 4,
});
