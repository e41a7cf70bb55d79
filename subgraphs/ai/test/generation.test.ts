import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Viewer } from '@aiva/shared';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GenerationService } from '../src/generation.service.js';
import type { MadeFile, MediaClient } from '../src/media-client.js';
import { openSqliteAiStore } from '../src/store/sqlite.js';
import { UsageMeter } from '../src/usage.js';
import { KEYS, modelsFor } from './providers/fixtures.js';
import { jsonOf } from './providers/servers/harness.js';
import { openAIServer } from './providers/servers/openai.js';

// The generation use cases over the real model layer and a fake speaking OpenAI's wire format: what a person
// gets when a capability has no model, when the provider refuses or is down, and when the quota is spent; what
// is handed to media (the person's id, a named file of the type the provider answered).

const dir = mkdtempSync(join(tmpdir(), 'aiva-generation-'));
const store = openSqliteAiStore({ file: join(dir, 'ai.sqlite') });
const fake = openAIServer();
const person: Viewer = { userId: 'person-1', sessionId: 's', roles: ['user'], kind: 'user' };

/** Media as ai sees it, keeping what it was given. */
class KeptMedia implements MediaClient {
  readonly stored: Array<{ ownerId: string; file: MadeFile }> = [];
  async store(ownerId: string, file: MadeFile) {
    this.stored.push({ ownerId, file });
    return `media-${this.stored.length}`;
  }
  async readAudio(_personId: string, mediaId: string) {
    return {
      id: mediaId,
      kind: 'AUDIO',
      mimeType: 'audio/mpeg',
      filename: 'talk.mp3',
      bytes: new Uint8Array(1234),
    };
  }
  async readText() {
    return '';
  }
}

function serviceFor(env: Record<string, string>, quota = 100) {
  const media = new KeptMedia();
  const meter = new UsageMeter(store, { requests: quota, tokens: 1_000_000 });
  const { models } = modelsFor({ OPENAI_API_KEY: KEYS.openai, OPENAI_BASE_URL: `${fake.url}/v1`, ...env });
  return { media, service: new GenerationService({ models, media, meter, maxTranscriptionBytes: 10_000 }) };
}

beforeAll(async () => {
  await fake.start();
});

afterEach(() => {
  fake.reset();
});

afterAll(async () => {
  await fake.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('generation', () => {
  it("hands media the provider's image as the person's named file, with the model that made it", async () => {
    const { media, service } = serviceFor({});
    const made = await service.image({ ...person, userId: 'person-image' }, 'a red kite', '512x512');
    expect(made).toEqual({ mediaId: 'media-1', model: 'openai:gpt-image-1' });
    expect(media.stored).toHaveLength(1);
    expect(media.stored[0]?.ownerId).toBe('person-image');
    expect(media.stored[0]?.file.mimeType).toBe('image/png');
    expect(media.stored[0]?.file.filename).toMatch(/^image-\d{8}-\d{6}\.png$/);
    expect(jsonOf(fake.requestsTo(/images\/generations$/)[0]!)).toMatchObject({
      prompt: 'a red kite',
      size: '512x512',
    });
    const made2 = await service.speech({ ...person, userId: 'person-image' }, 'hello', 'nova');
    expect(made2.model).toBe('openai:gpt-4o-mini-tts');
    expect(media.stored[1]?.file).toMatchObject({ mimeType: 'audio/mpeg' });
    expect(media.stored[1]?.file.filename).toMatch(/^speech-\d{8}-\d{6}\.mp3$/);
  });

  it('names the variable to set when a capability has no model, and calls nobody', async () => {
    const { media, service } = serviceFor({ AI_IMAGE_MODELS: 'none', AI_TRANSCRIPTION_MODELS: 'none' });
    await expect(service.image(person, 'a red kite')).rejects.toMatchObject({
      extensions: { code: 'BAD_USER_INPUT', reason: 'NOT_CONFIGURED' },
      message: expect.stringContaining('AI_IMAGE_MODELS'),
    });
    await expect(service.transcribe(person, 'm-1')).rejects.toMatchObject({
      extensions: { code: 'BAD_USER_INPUT', reason: 'NOT_CONFIGURED' },
      message: expect.stringContaining('AI_TRANSCRIPTION_MODELS'),
    });
    expect(fake.requests).toHaveLength(0);
    expect(media.stored).toHaveLength(0);
  });

  it("tells a provider's refusal from its outage, without its words or the key", async () => {
    const { media, service } = serviceFor({ AI_MAX_RETRIES: '0' });
    fake.failNext(1, 400);
    const refused = await service.image(person, 'something refused').catch((error: unknown) => error);
    expect(refused).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', reason: 'PROVIDER_REJECTED' } });
    fake.failNext(1, 503);
    const down = await service.speech(person, 'hello').catch((error: unknown) => error);
    expect(down).toMatchObject({
      extensions: { code: 'INTERNAL_SERVER_ERROR', reason: 'PROVIDER_UNAVAILABLE' },
    });
    for (const error of [refused, down]) {
      expect(JSON.stringify(error)).not.toContain(KEYS.openai);
      expect((error as Error).message).not.toContain('something refused');
    }
    expect(media.stored).toHaveLength(0);
  });

  it('sends the whole file of the media item to transcription, and counts the request', async () => {
    const { service } = serviceFor({});
    const heard = await service.transcribe({ ...person, userId: 'person-heard' }, 'm-7');
    expect(heard).toMatchObject({ mediaId: 'm-7', model: 'openai:whisper-1' });
    expect(heard.text).toContain('1234');
    const usage = await store.usageOf('person-heard', new Date().toISOString().slice(0, 10));
    expect(usage.find((u) => u.capability === 'transcription')?.requests).toBe(1);
  });

  it('refuses once the daily quota of the capability is spent, before calling the provider', async () => {
    const { service } = serviceFor({}, 1);
    const someone = { ...person, userId: 'person-quota' };
    await service.image(someone, 'first');
    const calls = fake.requests.length;
    await expect(service.image(someone, 'second')).rejects.toMatchObject({
      extensions: { code: 'RATE_LIMITED' },
    });
    expect(fake.requests.length).toBe(calls);
  });
});
