import { AivaError, badUserInput, type Logger, type Viewer } from '@aiva/shared';
import type { MediaClient } from './media-client.js';
import { type AiModels, NotConfiguredError, ProviderError } from './providers/index.js';
import type { UsageMeter } from './usage.js';

/** A file the AI made, stored as the person's media. */
export interface Generated {
  mediaId: string;
  /** `provider:model`. */
  model: string;
}

export interface Transcription {
  mediaId: string;
  /** The media item's file name. */
  filename: string;
  text: string;
  durationSeconds: number | null;
  /** `provider:model`. */
  model: string;
}

export interface GenerationServiceOptions {
  models: AiModels;
  media: MediaClient;
  meter: UsageMeter;
  /** Longest file `transcribe` sends to a provider (AI_MAX_TRANSCRIPTION_BYTES). */
  maxTranscriptionBytes: number;
  logger?: Logger;
}

/** File name extensions of the types providers answer. */
const EXTENSIONS: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'audio/mpeg': 'mp3',
  'audio/wav': 'wav',
  'audio/ogg': 'ogg',
  'audio/flac': 'flac',
  'audio/aac': 'aac',
  'audio/mp4': 'm4a',
  'audio/webm': 'webm',
};

/** `image-20261127-084501.png`. */
function fileNameOf(stem: string, mimeType: string, at: Date): string {
  const stamp = at.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
  return `${stem}-${stamp}.${EXTENSIONS[mimeType] ?? 'bin'}`;
}

/**
 * What a person sees when a model call fails: the variable to set when the capability has no model, the
 * provider's refusal as an input error, anything else as the provider being unavailable. Never the provider's
 * raw text, the prompt or a key.
 */
export function modelFailure(error: unknown): unknown {
  if (error instanceof NotConfiguredError) {
    return badUserInput(error.message, { reason: 'NOT_CONFIGURED' });
  }
  if (error instanceof ProviderError) {
    if (error.kind === 'rejected') {
      return badUserInput('The AI provider refused this request', { reason: 'PROVIDER_REJECTED' });
    }
    return new AivaError('INTERNAL_SERVER_ERROR', 'The AI provider could not answer; try again later', {
      reason: 'PROVIDER_UNAVAILABLE',
    });
  }
  return error;
}

/**
 * Images, speech and transcripts: each call is the person's (their daily quota of the capability, their usage),
 * and what a model makes is stored through the media subgraph's upload flow as the person's private media, where
 * it is typed, counted in their storage quota and processed like any upload.
 */
export class GenerationService {
  constructor(private readonly options: GenerationServiceOptions) {}

  async image(viewer: Viewer, prompt: string, size?: `${number}x${number}`): Promise<Generated> {
    const { models, meter } = this.options;
    await meter.check(viewer.userId, 'image');
    const image = await models
      .generateImage(prompt, size ? { size } : {})
      .catch((error: unknown) => Promise.reject(modelFailure(error)));
    await meter.record(viewer.userId, 'image', 0, 0);
    return this.store(viewer, 'image', image);
  }

  async speech(viewer: Viewer, text: string, voice?: string): Promise<Generated> {
    const { models, meter } = this.options;
    await meter.check(viewer.userId, 'speech');
    const audio = await models
      .speak(text, voice)
      .catch((error: unknown) => Promise.reject(modelFailure(error)));
    await meter.record(viewer.userId, 'speech', 0, 0);
    return this.store(viewer, 'speech', audio);
  }

  /** The text of one of the person's audio or video items. */
  async transcribe(viewer: Viewer, mediaId: string): Promise<Transcription> {
    const { models, meter, media } = this.options;
    if (models.configured().transcription.length === 0)
      throw modelFailure(new NotConfiguredError('transcription'));
    await meter.check(viewer.userId, 'transcription');
    const file = await media.readAudio(viewer.userId, mediaId, this.options.maxTranscriptionBytes);
    const transcript = await models
      .transcribe(file.bytes, file.mimeType)
      .catch((error: unknown) => Promise.reject(modelFailure(error)));
    await meter.record(viewer.userId, 'transcription', 0, 0);
    this.options.logger?.info(
      { capability: 'transcription', mediaId, bytes: file.bytes.length, chars: transcript.text.length },
      'media transcribed',
    );
    return {
      mediaId: file.id,
      filename: file.filename,
      text: transcript.text,
      durationSeconds: transcript.durationSeconds ?? null,
      model: `${transcript.provider}:${transcript.model}`,
    };
  }

  private async store(
    viewer: Viewer,
    stem: string,
    made: { bytes: Uint8Array; mimeType: string; provider: string; model: string },
  ): Promise<Generated> {
    const mediaId = await this.options.media.store(viewer.userId, {
      filename: fileNameOf(stem, made.mimeType, new Date()),
      mimeType: made.mimeType,
      bytes: made.bytes,
    });
    // The prompt or text is never logged: only what was made and where it went.
    this.options.logger?.info(
      { capability: stem, mediaId, bytes: made.bytes.length, model: `${made.provider}:${made.model}` },
      'generated media stored',
    );
    return { mediaId, model: `${made.provider}:${made.model}` };
  }
}
