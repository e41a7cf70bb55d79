import { expect } from 'vitest';
import { KEYS } from './fixtures.js';
import { describeSpeechContract } from './models.contract.js';
import { elevenLabsServer } from './servers/elevenlabs.js';
import { jsonOf } from './servers/harness.js';

/** ElevenLabs through @ai-sdk/elevenlabs, its fixed endpoint rewritten to ELEVENLABS_BASE_URL. */
describeSpeechContract({
  provider: 'elevenlabs',
  model: 'eleven_flash_v2_5',
  voice: 'voice-123',
  fake: () => elevenLabsServer(),
  env: (url) => ({
    ELEVENLABS_API_KEY: KEYS.elevenlabs,
    ELEVENLABS_BASE_URL: url,
    AI_SPEECH_MODELS: 'elevenlabs:eleven_flash_v2_5',
  }),
  path: /^\/v1\/text-to-speech\/voice-123$/,
  checkRequest: (request) => {
    expect(request.headers['xi-api-key']).toBe(KEYS.elevenlabs);
    expect(request.query.get('output_format')).toBe('mp3_44100_128');
    expect(jsonOf(request)).toEqual({ text: 'Hello there', model_id: 'eleven_flash_v2_5' });
  },
});
