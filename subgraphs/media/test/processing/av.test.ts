import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isMediaRejectedError,
  type ProcessLimits,
  probe,
  processAudioVideo,
  processFile,
  sniffFile,
} from '../../src/processing/index.js';
import { ffprobeJson, makeTempDir, runFfmpeg, writeTestAudio, writeTestVideo } from './fixtures.js';

const LIMITS: ProcessLimits = {
  maxPixels: 50_000_000,
  maxDurationSeconds: 60,
  maxPages: 50,
  maxTextChars: 100_000,
  timeoutMs: 90_000,
};

describe('audio/video pipeline', { timeout: 120_000 }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    ({ dir, cleanup } = await makeTempDir('av'));
  });
  afterAll(async () => {
    await cleanup();
  });

  async function workDir(name: string): Promise<string> {
    const path = join(dir, name);
    await mkdir(path);
    return path;
  }

  it('probes a generated video', async () => {
    const input = join(dir, 'probe.mp4');
    await writeTestVideo(input);
    const probed = await probe(input, { mimeType: 'video/mp4' });
    expect(probed).toMatchObject({
      hasVideo: true,
      hasAudio: true,
      width: 320,
      height: 240,
      videoCodec: 'h264',
    });
    expect(probed.durationSeconds).toBeCloseTo(2, 0);
  });

  it('makes a poster and a playable H.264/AAC web.mp4 from a 2 s video, reporting progress', async () => {
    const input = join(dir, 'clip.mp4');
    await writeTestVideo(input);
    const work = await workDir('clip-out');
    const progress: number[] = [];
    const result = await processFile(input, await sniffFile(input), work, LIMITS, (f) => progress.push(f));

    expect(result).toMatchObject({ kind: 'VIDEO', width: 320, height: 240, pageCount: null });
    expect(result.durationSeconds).toBeCloseTo(2, 0);
    expect(result.variants.map((v) => `${v.name}:${v.mimeType}`)).toEqual([
      'poster:image/webp',
      'poster:image/jpeg',
      'web:video/mp4',
    ]);
    for (const poster of result.variants.filter((v) => v.name === 'poster')) {
      expect(poster).toMatchObject({ width: 320, height: 240 });
      const meta = await sharp(poster.path).metadata();
      expect([meta.width, meta.height, meta.exif]).toEqual([320, 240, undefined]);
    }
    const web = result.variants.find((v) => v.name === 'web')!;
    expect(web).toMatchObject({ path: join(work, 'web.mp4'), width: 320, height: 240 });
    expect(web.size).toBeGreaterThan(0);
    const webProbe = await probe(web.path, { mimeType: 'video/mp4' });
    expect(webProbe).toMatchObject({ hasVideo: true, hasAudio: true, videoCodec: 'h264', audioCodec: 'aac' });
    expect(webProbe.durationSeconds).toBeCloseTo(2, 0);

    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((f) => f >= 0 && f <= 1)).toBe(true);
    expect(progress.at(-1)).toBe(1);
  });

  it('scales the rendition down to 720p with even dimensions, never up', async () => {
    const cases = [
      ['1920x1080', [1280, 720]],
      ['720x1280', [720, 1280]],
      ['321x241', [320, 240]],
    ] as const;
    for (const [size, [width, height]] of cases) {
      const input = join(dir, `scale-${size}.mp4`);
      await runFfmpeg([
        ...['-f', 'lavfi', '-i', `testsrc=duration=0.5:size=${size}:rate=10`],
        ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv444p', input],
      ]);
      const result = await processFile(input, await sniffFile(input), await workDir(`scale-${size}`), LIMITS);
      expect(
        result.variants.find((v) => v.name === 'web'),
        size,
      ).toMatchObject({ width, height });
      expect(await probe(result.variants.find((v) => v.name === 'web')!.path), size).toMatchObject({
        hasAudio: false,
        width,
        height,
      });
    }
  });

  it('applies rotation metadata and strips location metadata from the rendition', async () => {
    const input = join(dir, 'phone.mp4');
    const unrotated = join(dir, 'phone-unrotated.mp4');
    await writeTestVideo(unrotated, 1, [
      '-metadata',
      'location=+48.8566+002.3522/',
      '-metadata',
      'title=holiday',
    ]);
    // A display-matrix rotation, as phones write it, is only kept by a remux (an encode resets it).
    await runFfmpeg(['-i', unrotated, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', input]);
    const source = await ffprobeJson(input);
    expect(source.format.tags?.location).toBe('+48.8566+002.3522/');
    const work = await workDir('phone-out');
    const result = await processFile(input, await sniffFile(input), work, LIMITS);
    expect(result).toMatchObject({ kind: 'VIDEO', width: 240, height: 320 });
    expect(result.variants.find((v) => v.name === 'poster')).toMatchObject({ width: 240, height: 320 });
    const web = result.variants.find((v) => v.name === 'web')!;
    expect(web).toMatchObject({ width: 240, height: 320 });
    const rendition = await ffprobeJson(web.path);
    expect(rendition.format.tags?.location).toBeUndefined();
    expect(rendition.format.tags?.title).toBeUndefined();
  });

  it('treats mp3 as AUDIO with its duration and no extra rendition', async () => {
    const input = join(dir, 'tone.mp3');
    await writeTestAudio(input, 3);
    const result = await processFile(input, await sniffFile(input), await workDir('mp3-out'), LIMITS);
    expect(result).toMatchObject({ kind: 'AUDIO', width: null, height: null, variants: [] });
    expect(result.durationSeconds).toBeCloseTo(3, 0);
  });

  it('does not count mp3 cover art as video', async () => {
    const bare = join(dir, 'bare.mp3');
    const cover = join(dir, 'cover.png');
    const input = join(dir, 'with-cover.mp3');
    await writeTestAudio(bare, 2);
    await runFfmpeg(['-f', 'lavfi', '-i', 'testsrc=size=64x64', '-frames:v', '1', cover]);
    await runFfmpeg([
      ...['-i', bare, '-i', cover, '-map', '0', '-map', '1', '-c', 'copy'],
      ...['-id3v2_version', '3', '-disposition:v', 'attached_pic', input],
    ]);
    const source = await ffprobeJson(input);
    expect(source.streams.map((s) => s.codec_type)).toEqual(['audio', 'video']);
    const result = await processFile(input, await sniffFile(input), await workDir('cover-out'), LIMITS);
    expect(result).toMatchObject({ kind: 'AUDIO', variants: [] });
  });

  it('measures a live-recorded webm that states no duration from its rendition, and enforces the limit', async () => {
    const input = join(dir, 'live.webm');
    await runFfmpeg([
      ...[
        '-f',
        'lavfi',
        '-i',
        'testsrc=duration=2:size=320x240:rate=25',
        '-f',
        'lavfi',
        '-i',
        'sine=duration=2',
      ],
      ...['-c:v', 'libvpx', '-deadline', 'realtime', '-b:v', '300k', '-c:a', 'libopus', '-shortest'],
      ...['-f', 'webm', '-live', '1', input],
    ]);
    expect((await probe(input, { mimeType: 'video/webm' })).durationSeconds).toBeNull();
    const sniffed = await sniffFile(input);
    const result = await processFile(input, sniffed, await workDir('live-out'), LIMITS);
    expect(result.kind).toBe('VIDEO');
    expect(result.durationSeconds).toBeCloseTo(2, 0);

    const limits = { ...LIMITS, maxDurationSeconds: 1 };
    const error = await processFile(input, sniffed, await workDir('live-short-out'), limits).catch(
      (e: unknown) => e,
    );
    expect(isMediaRejectedError(error) && error.reason).toBe('MEDIA_TOO_LONG');
  });

  it('turns WAV into an AAC audio.m4a', async () => {
    const input = join(dir, 'tone.wav');
    await writeTestAudio(input, 2);
    const work = await workDir('wav-out');
    const result = await processFile(input, await sniffFile(input), work, LIMITS);
    expect(result.kind).toBe('AUDIO');
    expect(result.durationSeconds).toBeCloseTo(2, 0);
    expect(result.variants).toHaveLength(1);
    expect(result.variants[0]).toMatchObject({
      name: 'audio',
      mimeType: 'audio/mp4',
      path: join(work, 'audio.m4a'),
    });
    const m4a = await probe(result.variants[0]!.path, { mimeType: 'audio/mp4' });
    expect(m4a).toMatchObject({ hasVideo: false, hasAudio: true, audioCodec: 'aac' });
  });

  it('corrects an audio-only webm (sniffed as video) to AUDIO', async () => {
    const input = join(dir, 'voice.webm');
    await writeTestAudio(input, 2);
    const sniffed = await sniffFile(input);
    expect(sniffed.kind).toBe('VIDEO');
    const result = await processFile(input, sniffed, await workDir('webm-out'), LIMITS);
    expect(result.kind).toBe('AUDIO');
    expect(result.variants.map((v) => v.name)).toEqual(['audio']);
  });

  it('refuses media longer than the limit', async () => {
    const input = join(dir, 'long.mp3');
    await writeTestAudio(input, 3);
    const limits = { ...LIMITS, maxDurationSeconds: 1 };
    const error = await processFile(input, await sniffFile(input), await workDir('long-out'), limits).catch(
      (e: unknown) => e,
    );
    expect(isMediaRejectedError(error) && error.reason).toBe('MEDIA_TOO_LONG');
  });

  it('refuses a file ffprobe cannot read', async () => {
    const input = join(dir, 'garbage.mp4');
    // An ftyp box that file-type accepts as mp4, followed by junk.
    const head = Buffer.from('\0\0\0\x18ftypisom\0\0\0\0isomiso2', 'latin1');
    await writeFile(input, Buffer.concat([head, Buffer.alloc(2000, 0x5a)]));
    const sniffed = await sniffFile(input);
    expect(sniffed.mimeType).toBe('video/mp4');
    const error = await processFile(input, sniffed, await workDir('garbage-out'), LIMITS).catch(
      (e: unknown) => e,
    );
    expect(isMediaRejectedError(error) && error.reason).toBe('UNREADABLE_MEDIA');
  });

  it('kills a tool that outlives the time budget and refuses with PROCESSING_TIMEOUT', async () => {
    const input = join(dir, 'slow.mp4');
    await writeTestVideo(input, 1);
    // Stands in for an ffprobe stuck on a hostile file: it never answers.
    const stuckProbe = join(dir, 'stuck-ffprobe.sh');
    await writeFile(stuckProbe, '#!/bin/sh\nexec sleep 60\n', { mode: 0o755 });
    const error = await processAudioVideo(input, await sniffFile(input), await workDir('slow-out'), {
      ...LIMITS,
      timeoutMs: 300,
      ffprobePath: stuckProbe,
    }).catch((e: unknown) => e);
    expect(isMediaRejectedError(error) && error.reason).toBe('PROCESSING_TIMEOUT');
  });

  it('reports a missing tool as an internal error, not a refusal', async () => {
    const input = join(dir, 'clip.mp4');
    const error = await probe(input, { ffprobePath: join(dir, 'no-such-ffprobe') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(isMediaRejectedError(error)).toBe(false);
  });
});
