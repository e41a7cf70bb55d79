import { spawn } from 'node:child_process';
import { rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { MediaRejectedError } from './errors.js';
import { writeImageVariant } from './image.js';
import type { ProcessedVariant, ProcessResult } from './process.js';
import type { Sniffed } from './sniff.js';

/** Where the ffmpeg/ffprobe binaries are; defaults to the bundled @ffmpeg-installer / @ffprobe-installer ones. */
export interface AvToolOptions {
  ffmpegPath?: string;
  ffprobePath?: string;
}

/** Options of one probe run. */
export interface ProbeOptions extends AvToolOptions {
  /** The sniffed MIME type; when known the demuxer is forced (ffmpeg never guesses from the content). */
  mimeType?: string;
  /** Wall-clock budget in ms (default 30 s); the process is killed when it runs out. */
  timeoutMs?: number;
}

/** What ffprobe says about a file. Attached pictures (cover art in mp3/m4a) do not count as video. */
export interface ProbeResult {
  /** null when the container does not say (e.g. some MediaRecorder webm files). */
  durationSeconds: number | null;
  hasVideo: boolean;
  hasAudio: boolean;
  /** Display size of the first video stream, rotation applied. */
  width?: number;
  height?: number;
  videoCodec?: string;
  audioCodec?: string;
  formatName: string;
}

/** Limits and hooks of the AV pipeline. */
export interface AvOptions extends AvToolOptions {
  maxDurationSeconds: number;
  /** Largest width × height of a video frame. */
  maxPixels: number;
  /** Wall-clock budget for the whole file (probe + poster + transcode), in ms. */
  timeoutMs: number;
  /** Transcode progress in [0, 1], from ffmpeg's `-progress` output against the probed duration. */
  onProgress?: (fraction: number) => void;
}

const requireFromHere = createRequire(import.meta.url);

/** Resolved lazily so a deployment that passes its own paths never loads the installer packages. */
function ffmpegPathOf(options: AvToolOptions): string {
  return options.ffmpegPath ?? (requireFromHere('@ffmpeg-installer/ffmpeg') as { path: string }).path;
}

function ffprobePathOf(options: AvToolOptions): string {
  return options.ffprobePath ?? (requireFromHere('@ffprobe-installer/ffprobe') as { path: string }).path;
}

/**
 * The demuxer to force for each allowed type. Forcing it means ffmpeg cannot be tricked by the content into
 * another demuxer (the classic one being an HLS playlist that makes ffmpeg open other files or URLs).
 */
const DEMUXER_OF_MIME: Record<string, string> = {
  'video/mp4': 'mov',
  'video/quicktime': 'mov',
  'audio/mp4': 'mov',
  'video/webm': 'matroska',
  'video/x-matroska': 'matroska',
  'audio/webm': 'matroska',
  'audio/mpeg': 'mp3',
  'audio/ogg': 'ogg',
  'audio/wav': 'wav',
  'audio/flac': 'flac',
  'audio/aac': 'aac',
};

/** Input arguments: forced demuxer, local files only, and the `file:` protocol so a path is never an option. */
function inputArgs(input: string, mimeType: string | undefined): string[] {
  const demuxer = mimeType === undefined ? undefined : DEMUXER_OF_MIME[mimeType];
  return ['-protocol_whitelist', 'file', ...(demuxer ? ['-f', demuxer] : []), '-i', `file:${input}`];
}

/** How much stderr is kept for diagnostics (the end is where ffmpeg explains what failed). */
const STDERR_TAIL_BYTES = 4096;
/** ffprobe JSON for a sane file is a few KB; more means something is off. */
const MAX_STDOUT_BYTES = 2 * 1024 * 1024;

/**
 * A tool that exited unsuccessfully. Internal: its `stderrTail` is for logs (it may contain paths), never for
 * users; the pipelines wrap it as the `cause` of a MediaRejectedError.
 */
export class AvToolError extends Error {
  readonly exitCode: number | null;
  readonly stderrTail: string;
  constructor(tool: string, exitCode: number | null, signal: string | null, stderrTail: string) {
    super(`${tool} failed (${signal ? `signal ${signal}` : `exit code ${exitCode}`}): ${stderrTail.trim()}`);
    this.name = 'AvToolError';
    this.exitCode = exitCode;
    this.stderrTail = stderrTail;
  }
}

interface RunOptions {
  deadline: number;
  /** Each stdout line, for `-progress pipe:1`; without it stdout is collected (bounded) and returned. */
  onLine?: (line: string) => void;
}

function appendTail(tail: string, chunk: Buffer): string {
  const next = tail + chunk.toString('utf8');
  return next.length > STDERR_TAIL_BYTES ? next.slice(-STDERR_TAIL_BYTES) : next;
}

function timeoutError(): MediaRejectedError {
  return new MediaRejectedError('PROCESSING_TIMEOUT', 'Processing the media file took too long');
}

/**
 * Runs a tool with an argument array (no shell), killing it at the deadline (MediaRejectedError
 * PROCESSING_TIMEOUT). Resolves with stdout on exit code 0; rejects with AvToolError otherwise.
 */
function runTool(command: string, args: string[], options: RunOptions): Promise<string> {
  const budget = options.deadline - Date.now();
  if (budget <= 0) return Promise.reject(timeoutError());
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], shell: false });
    let stderrTail = '';
    let stdout = '';
    let pending = '';
    let timedOut = false;
    let overflow = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, budget);
    child.stderr.on('data', (chunk: Buffer) => {
      stderrTail = appendTail(stderrTail, chunk);
    });
    child.stdout.on('data', (chunk: Buffer) => {
      if (options.onLine) {
        pending += chunk.toString('utf8');
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) options.onLine(line.trim());
        return;
      }
      stdout += chunk.toString('utf8');
      if (stdout.length > MAX_STDOUT_BYTES && !overflow) {
        overflow = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`Could not start ${command}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) reject(timeoutError());
      else if (overflow) reject(new AvToolError(command, code, signal, 'output too large'));
      else if (code === 0) resolve(stdout);
      else reject(new AvToolError(command, code, signal, stderrTail));
    });
  });
}

interface FfprobeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  duration?: string;
  disposition?: { attached_pic?: number };
  tags?: Record<string, string>;
  side_data_list?: Array<{ rotation?: number }>;
}

interface FfprobeOutput {
  streams?: FfprobeStream[];
  format?: { format_name?: string; duration?: string };
}

function positiveNumber(value: string | undefined): number | null {
  const n = value === undefined ? Number.NaN : Number(value);
  return Number.isFinite(n) && n > 0 ? n : null;
}

/** Rotation in degrees from the display matrix (new ffprobe) or the `rotate` tag (old muxers). */
function rotationOf(stream: FfprobeStream): number {
  const fromSideData = stream.side_data_list?.find((d) => typeof d.rotation === 'number')?.rotation;
  const raw = fromSideData ?? Number(stream.tags?.rotate ?? 0);
  return Number.isFinite(raw) ? Math.abs(raw) % 180 : 0;
}

function durationOf(output: FfprobeOutput, streams: FfprobeStream[]): number | null {
  const fromFormat = positiveNumber(output.format?.duration);
  if (fromFormat !== null) return fromFormat;
  const fromStreams = streams.map((s) => positiveNumber(s.duration)).filter((d): d is number => d !== null);
  return fromStreams.length > 0 ? Math.max(...fromStreams) : null;
}

function toProbeResult(output: FfprobeOutput): ProbeResult {
  const streams = output.streams ?? [];
  const video = streams.find((s) => s.codec_type === 'video' && s.disposition?.attached_pic !== 1);
  const audio = streams.find((s) => s.codec_type === 'audio');
  const result: ProbeResult = {
    durationSeconds: durationOf(output, streams),
    hasVideo: video !== undefined,
    hasAudio: audio !== undefined,
    formatName: output.format?.format_name ?? 'unknown',
  };
  if (video?.codec_name) result.videoCodec = video.codec_name;
  if (audio?.codec_name) result.audioCodec = audio.codec_name;
  if (video?.width && video.height) {
    const swap = rotationOf(video) === 90;
    result.width = swap ? video.height : video.width;
    result.height = swap ? video.width : video.height;
  }
  return result;
}

/**
 * Probes a local media file with ffprobe. Files ffprobe cannot read, or that hold neither audio nor video, are
 * refused with MediaRejectedError UNREADABLE_MEDIA.
 */
export async function probe(input: string, options: ProbeOptions = {}): Promise<ProbeResult> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const args = ['-v', 'error', '-hide_banner', '-print_format', 'json', '-show_format', '-show_streams'];
  let parsed: FfprobeOutput;
  try {
    const stdout = await runTool(ffprobePathOf(options), [...args, ...inputArgs(input, options.mimeType)], {
      deadline,
    });
    parsed = JSON.parse(stdout) as FfprobeOutput;
  } catch (error) {
    if (error instanceof MediaRejectedError || !isToolOrParseError(error)) throw error;
    throw new MediaRejectedError('UNREADABLE_MEDIA', 'The media file could not be read', { cause: error });
  }
  const result = toProbeResult(parsed);
  if (!result.hasVideo && !result.hasAudio) {
    throw new MediaRejectedError('UNREADABLE_MEDIA', 'The media file has neither audio nor video');
  }
  return result;
}

function isToolOrParseError(error: unknown): boolean {
  return error instanceof AvToolError || error instanceof SyntaxError;
}

/** Wraps a failure of ffmpeg on the input as a refusal; start-up failures (missing binary) stay internal. */
function asUnreadable(error: unknown): unknown {
  if (!(error instanceof AvToolError)) return error;
  return new MediaRejectedError('UNREADABLE_MEDIA', 'The media file could not be decoded', { cause: error });
}

/**
 * Parses `-progress pipe:1` lines into a fraction of `durationSeconds`. A throwing callback is ignored: it runs
 * inside a stream handler, where an exception would take the process down.
 */
function progressParser(
  durationSeconds: number | null,
  onProgress: ((fraction: number) => void) | undefined,
) {
  const report = (fraction: number) => {
    try {
      onProgress?.(fraction);
    } catch {
      // Progress is best effort; the transcode goes on.
    }
  };
  return (line: string): void => {
    if (!onProgress) return;
    if (line === 'progress=end') {
      report(1);
      return;
    }
    // ffmpeg writes microseconds under both names (`out_time_ms` is a historical misnomer).
    const match = /^out_time_(?:us|ms)=(\d+)$/.exec(line);
    if (!match || durationSeconds === null) return;
    const seconds = Number(match[1]) / 1_000_000;
    report(Math.min(1, Math.max(0, seconds / durationSeconds)));
  };
}

/** Common output arguments: no metadata (phone videos carry GPS in it), no chapters, subtitles or data. */
const STRIP_ARGS = ['-map_metadata', '-1', '-map_chapters', '-1', '-sn', '-dn'];

/**
 * Scale so that the longest side is ≤ 1280 and the shortest ≤ 720 (720p in either orientation), never up, with
 * even dimensions as yuv420p requires. Written for ffmpeg 2018 (no `force_divisible_by`).
 */
const SCALE_720P =
  "scale=w='trunc(iw*min(1,min(1280/max(iw,ih),720/min(iw,ih)))/2)*2'" +
  ":h='trunc(ih*min(1,min(1280/max(iw,ih),720/min(iw,ih)))/2)*2'";

interface Job {
  input: string;
  sniffed: Sniffed;
  workDir: string;
  options: AvOptions;
  deadline: number;
}

async function variantOf(
  name: string,
  path: string,
  mimeType: string,
  dims: { width?: number; height?: number },
) {
  const { size } = await stat(path);
  const variant: ProcessedVariant = {
    name,
    path,
    mimeType,
    width: dims.width ?? null,
    height: dims.height ?? null,
    size,
  };
  return variant;
}

async function extractFrame(job: Job, atSeconds: number, framePath: string): Promise<boolean> {
  const args = [
    '-nostdin',
    '-hide_banner',
    '-v',
    'error',
    '-ss',
    atSeconds.toFixed(3),
    ...inputArgs(job.input, job.sniffed.mimeType),
    '-map',
    '0:v:0',
    '-frames:v',
    '1',
    ...STRIP_ARGS,
    '-f',
    'image2',
    '-c:v',
    'png',
    '-y',
    framePath,
  ];
  await runTool(ffmpegPathOf(job.options), args, { deadline: job.deadline }).catch((error: unknown) => {
    throw asUnreadable(error);
  });
  return stat(framePath).then(
    (s) => s.size > 0,
    () => false,
  );
}

/**
 * The poster: the frame at min(1 s, duration / 2) (the very first frame is often black), or the first frame when
 * seeking yields nothing, as `poster.webp` and `poster.jpg` (≤ 1280 px, through sharp).
 */
async function makePoster(job: Job, durationSeconds: number | null): Promise<ProcessedVariant[]> {
  const framePath = join(job.workDir, 'poster-frame.png');
  const at = durationSeconds === null ? 0 : Math.min(1, durationSeconds / 2);
  try {
    const found =
      (await extractFrame(job, at, framePath)) || (at > 0 && (await extractFrame(job, 0, framePath)));
    if (!found) throw new MediaRejectedError('UNREADABLE_MEDIA', 'No frame could be decoded from the video');
    const pipeline = { maxPixels: job.options.maxPixels, deadline: job.deadline };
    return [
      await writeImageVariant(
        framePath,
        job.workDir,
        { name: 'poster', format: 'webp', maxSide: 1280 },
        pipeline,
      ),
      await writeImageVariant(
        framePath,
        job.workDir,
        { name: 'poster', format: 'jpeg', maxSide: 1280 },
        pipeline,
      ),
    ];
  } finally {
    await rm(framePath, { force: true });
  }
}

/** Runs an ffmpeg transcode with progress, stopping output after maxDuration + 1 s whatever the container says. */
async function transcode(job: Job, durationSeconds: number | null, outputArgs: string[], out: string) {
  const args = [
    '-nostdin',
    '-hide_banner',
    '-v',
    'error',
    '-nostats',
    '-progress',
    'pipe:1',
    ...inputArgs(job.input, job.sniffed.mimeType),
    ...outputArgs,
    ...STRIP_ARGS,
    '-t',
    String(job.options.maxDurationSeconds + 1),
    '-movflags',
    '+faststart',
    '-y',
    out,
  ];
  const onLine = progressParser(durationSeconds, job.options.onProgress);
  await runTool(ffmpegPathOf(job.options), args, { deadline: job.deadline, onLine }).catch(
    (error: unknown) => {
      throw asUnreadable(error);
    },
  );
}

/** H.264 (yuv420p, veryfast, CRF 23) ≤ 720p + AAC when there is audio; plays in every browser. */
function webVideoArgs(hasAudio: boolean): string[] {
  const video = ['-map', '0:v:0', '-vf', SCALE_720P, '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23'];
  const format = ['-pix_fmt', 'yuv420p', '-profile:v', 'high', '-level', '4.0'];
  const audio = hasAudio ? ['-map', '0:a:0', '-c:a', 'aac', '-b:a', '128k', '-ac', '2'] : ['-an'];
  return [...video, ...format, ...audio, '-f', 'mp4'];
}

/** Audio codecs every browser plays as they are; anything else gets an AAC rendition. */
const WEB_AUDIO_CODECS = new Set(['mp3', 'aac']);

function checkDuration(durationSeconds: number | null, max: number): void {
  if (durationSeconds !== null && durationSeconds > max) {
    throw new MediaRejectedError(
      'MEDIA_TOO_LONG',
      `The media is ${Math.round(durationSeconds)} s long, more than the ${max} s allowed`,
    );
  }
}

/** When the container did not state a duration, the rendition's (cut at max + 1 s) decides. */
async function settleDuration(job: Job, known: number | null, rendition: string): Promise<number | null> {
  if (known !== null) return known;
  const measured = (await probe(rendition, { ...toolOptions(job.options), timeoutMs: 30_000 }))
    .durationSeconds;
  checkDuration(measured, job.options.maxDurationSeconds);
  return measured;
}

function toolOptions(options: AvToolOptions): AvToolOptions {
  const tools: AvToolOptions = {};
  if (options.ffmpegPath) tools.ffmpegPath = options.ffmpegPath;
  if (options.ffprobePath) tools.ffprobePath = options.ffprobePath;
  return tools;
}

async function processVideo(job: Job, probed: ProbeResult): Promise<ProcessResult> {
  const { width, height } = probed;
  if (width !== undefined && height !== undefined && width * height > job.options.maxPixels) {
    throw new MediaRejectedError(
      'VIDEO_TOO_LARGE',
      `The video frame is ${width} × ${height} pixels, too large`,
    );
  }
  const poster = await makePoster(job, probed.durationSeconds);
  const webPath = join(job.workDir, 'web.mp4');
  await transcode(job, probed.durationSeconds, webVideoArgs(probed.hasAudio), webPath);
  const durationSeconds = await settleDuration(job, probed.durationSeconds, webPath);
  const web = await probe(webPath, { ...toolOptions(job.options), mimeType: 'video/mp4' });
  const webVariant = await variantOf('web', webPath, 'video/mp4', web);
  return {
    kind: 'VIDEO',
    width: width ?? poster[0]?.width ?? null,
    height: height ?? poster[0]?.height ?? null,
    durationSeconds,
    pageCount: null,
    variants: [...poster, webVariant],
  };
}

async function processAudio(job: Job, probed: ProbeResult): Promise<ProcessResult> {
  const variants: ProcessedVariant[] = [];
  let durationSeconds = probed.durationSeconds;
  if (!WEB_AUDIO_CODECS.has(probed.audioCodec ?? '')) {
    const out = join(job.workDir, 'audio.m4a');
    const args = ['-map', '0:a:0', '-vn', '-c:a', 'aac', '-b:a', '160k', '-ac', '2', '-f', 'ipod'];
    await transcode(job, durationSeconds, args, out);
    durationSeconds = await settleDuration(job, durationSeconds, out);
    variants.push(await variantOf('audio', out, 'audio/mp4', {}));
  }
  return { kind: 'AUDIO', width: null, height: null, durationSeconds, pageCount: null, variants };
}

/**
 * Video and audio pipeline. The kind is decided by the streams, not the container: a webm/mp4 with only audio
 * is AUDIO, an "audio" mp4 with a real video stream is VIDEO (cover art does not count).
 * - VIDEO: `poster.webp` + `poster.jpg` and `web.mp4` (H.264/AAC ≤ 720p, faststart, no metadata).
 * - AUDIO: `audio.m4a` (AAC 160k, no metadata) unless the audio is already mp3 or AAC, which play everywhere.
 * Refusals: UNREADABLE_MEDIA, MEDIA_TOO_LONG (maxDurationSeconds), VIDEO_TOO_LARGE (maxPixels per frame),
 * PROCESSING_TIMEOUT (timeoutMs for the whole file; the running tool is killed).
 */
export async function processAudioVideo(
  input: string,
  sniffed: Sniffed,
  workDir: string,
  options: AvOptions,
): Promise<ProcessResult> {
  const deadline = Date.now() + options.timeoutMs;
  const job: Job = { input, sniffed, workDir, options, deadline };
  const probed = await probe(input, {
    ...toolOptions(options),
    mimeType: sniffed.mimeType,
    timeoutMs: Math.min(30_000, options.timeoutMs),
  });
  checkDuration(probed.durationSeconds, options.maxDurationSeconds);
  return probed.hasVideo ? processVideo(job, probed) : processAudio(job, probed);
}
