import { expect } from 'vitest';
import { KEYS } from './fixtures.js';
import {
  describeChatContract,
  describeEmbeddingContract,
  describeImageContract,
  describeSpeechContract,
  describeTranscriptionContract,
  expectBearer,
} from './models.contract.js';
import { jsonOf, type RecordedRequest } from './servers/harness.js';
import { OPENAI_DELTAS, openAIServer } from './servers/openai.js';

/** OpenAI through @ai-sdk/openai, against a fake speaking its REST wire format. */
const openai = (variable: string, model: string) => (url: string) => ({
  OPENAI_API_KEY: KEYS.openai,
  OPENAI_BASE_URL: `${url}/v1`,
  [variable]: `openai:${model}`,
});
const withKey = (request: RecordedRequest) => expectBearer(request, KEYS.openai);

describeChatContract({
  provider: 'openai',
  model: 'gpt-4o-mini',
  fake: () => openAIServer(),
  env: openai('AI_CHAT_MODELS', 'gpt-4o-mini'),
  path: /\/chat\/completions$/,
  deltas: OPENAI_DELTAS,
  usage: { inputTokens: 12, outputTokens: OPENAI_DELTAS.length },
  promptIn: (body) => JSON.stringify(body.messages),
  checkRequest: (request) => {
    withKey(request);
    const body = jsonOf(request);
    expect(body).toMatchObject({
      model: 'gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(body.messages).toContainEqual({ role: 'system', content: 'Be brief.' });
  },
});

describeEmbeddingContract({
  provider: 'openai',
  model: 'text-embedding-3-small',
  fake: () => openAIServer({ dimensions: 8 }),
  env: openai('AI_EMBEDDING_MODELS', 'text-embedding-3-small'),
  path: /\/embeddings$/,
  dimensions: 8,
  checkRequest: (request) => {
    withKey(request);
    expect(jsonOf(request)).toMatchObject({
      model: 'text-embedding-3-small',
      input: ['a', 'bb', 'a longer text'],
    });
  },
});

describeImageContract({
  provider: 'openai',
  model: 'dall-e-3',
  fake: () => openAIServer(),
  env: openai('AI_IMAGE_MODELS', 'dall-e-3'),
  path: /\/images\/generations$/,
  checkRequest: (request) => {
    withKey(request);
    expect(jsonOf(request)).toMatchObject({
      model: 'dall-e-3',
      size: '512x512',
      response_format: 'b64_json',
    });
  },
});

describeTranscriptionContract({
  provider: 'openai',
  model: 'whisper-1',
  fake: () => openAIServer(),
  env: openai('AI_TRANSCRIPTION_MODELS', 'whisper-1'),
  path: /\/audio\/transcriptions$/,
  checkRequest: (request) => {
    withKey(request);
    expect(String(request.headers['content-type'])).toMatch(/^multipart\/form-data; boundary=/);
  },
});

describeSpeechContract({
  provider: 'openai',
  model: 'gpt-4o-mini-tts',
  voice: 'nova',
  fake: () => openAIServer(),
  env: openai('AI_SPEECH_MODELS', 'gpt-4o-mini-tts'),
  path: /\/audio\/speech$/,
  checkRequest: (request) => {
    withKey(request);
    expect(jsonOf(request)).toMatchObject({ model: 'gpt-4o-mini-tts', voice: 'nova', input: 'Hello there' });
  },
});
