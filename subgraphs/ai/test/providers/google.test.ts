import { expect } from 'vitest';
import { KEYS } from './fixtures.js';
import { describeChatContract, describeEmbeddingContract } from './models.contract.js';
import { GOOGLE_DELTAS, googleServer } from './servers/google.js';
import { jsonOf, type RecordedRequest } from './servers/harness.js';

/** Gemini through @ai-sdk/google, against a fake speaking the Generative Language API (v1beta). */
const google = (variable: string, model: string) => (url: string) => ({
  GOOGLE_GENERATIVE_AI_API_KEY: KEYS.google,
  GOOGLE_BASE_URL: `${url}/v1beta`,
  [variable]: `google:${model}`,
});
const withKey = (request: RecordedRequest) => expect(request.headers['x-goog-api-key']).toBe(KEYS.google);

describeChatContract({
  provider: 'google',
  model: 'gemini-2.0-flash',
  fake: () => googleServer(),
  env: google('AI_CHAT_MODELS', 'gemini-2.0-flash'),
  path: /\/models\/gemini-2\.0-flash:streamGenerateContent$/,
  deltas: GOOGLE_DELTAS,
  usage: { inputTokens: 9, outputTokens: GOOGLE_DELTAS.length },
  promptIn: (body) => JSON.stringify(body.contents),
  checkRequest: (request) => {
    withKey(request);
    expect(request.query.get('alt')).toBe('sse');
    expect(jsonOf(request).systemInstruction).toEqual({ parts: [{ text: 'Be brief.' }] });
  },
});

describeEmbeddingContract({
  provider: 'google',
  model: 'gemini-embedding-001',
  fake: () => googleServer({ dimensions: 6 }),
  env: google('AI_EMBEDDING_MODELS', 'gemini-embedding-001'),
  path: /:batchEmbedContents$/,
  singlePath: /:embedContent$/,
  dimensions: 6,
  checkRequest: (request) => {
    withKey(request);
    const requests = jsonOf(request).requests as Array<{ model: string }>;
    expect(requests.map((r) => r.model)).toEqual(Array(3).fill('models/gemini-embedding-001'));
  },
});
