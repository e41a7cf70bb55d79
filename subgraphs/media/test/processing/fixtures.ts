/**
 * Test fixtures generated on the fly (sharp, the bundled ffmpeg, hand-written PDF bytes): no binary is committed.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, createDeflate } from 'node:zlib';
import sharp from 'sharp';

const requireFromHere = createRequire(import.meta.url);
export const FFMPEG_PATH = (requireFromHere('@ffmpeg-installer/ffmpeg') as { path: string }).path;
const FFPROBE_PATH = (requireFromHere('@ffprobe-installer/ffprobe') as { path: string }).path;

/** A fresh temp dir and its removal. */
export async function makeTempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `aiva-media-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A colourful test picture (gradient + noise-free shapes) so encoders have real content. */
function testPicture(width: number, height: number) {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="g"><stop offset="0" stop-color="#f00"/><stop offset="1" stop-color="#00f"/></linearGradient></defs>
    <rect width="100%" height="100%" fill="url(#g)"/><circle cx="${width / 3}" cy="${height / 2}" r="${height / 4}" fill="#0f0"/>
  </svg>`;
  return sharp(Buffer.from(svg));
}

/** GPS EXIF as sharp writes it (IFD3 is the GPS directory). */
export const GPS_EXIF = {
  IFD0: { Make: 'AivaTestCam', Model: 'T-1' },
  IFD3: {
    GPSLatitudeRef: 'N',
    GPSLatitude: '48/1 51/1 0/1',
    GPSLongitudeRef: 'E',
    GPSLongitude: '2/1 21/1 0/1',
  },
};

/** A JPEG of `width` × `height` with GPS EXIF and, optionally, an EXIF orientation. */
export async function writeJpegWithGps(
  path: string,
  width: number,
  height: number,
  orientation?: number,
): Promise<void> {
  let pipeline = testPicture(width, height).withExif(GPS_EXIF);
  if (orientation !== undefined) pipeline = pipeline.withMetadata({ orientation });
  await pipeline.jpeg({ quality: 90 }).toFile(path);
}

export async function writePng(path: string, width: number, height: number): Promise<void> {
  await testPicture(width, height).png().toFile(path);
}

/**
 * Whether an EXIF block (as sharp's metadata().exif returns it: "Exif\0\0" + TIFF) has a GPS IFD pointer
 * (tag 0x8825) in IFD0. A tiny TIFF reader, enough to check a fixture.
 */
export function exifHasGps(exif: Buffer): boolean {
  const tiff = exif.subarray(exif.subarray(0, 6).toString('latin1') === 'Exif\0\0' ? 6 : 0);
  const little = tiff.subarray(0, 2).toString('latin1') === 'II';
  const u16 = (o: number) => (little ? tiff.readUInt16LE(o) : tiff.readUInt16BE(o));
  const u32 = (o: number) => (little ? tiff.readUInt32LE(o) : tiff.readUInt32BE(o));
  const ifd0 = u32(4);
  const count = u16(ifd0);
  for (let i = 0; i < count; i++) {
    if (u16(ifd0 + 2 + i * 12) === 0x8825) return true;
  }
  return false;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * A valid PNG "decompression bomb": `size` × `size` 1-bit greyscale, all zeros, deflated at level 9 while
 * streaming (never held in memory). 50,000² pixels come to a few hundred KB on disk.
 */
export async function writePngBomb(path: string, size: number): Promise<void> {
  const out = createWriteStream(path);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // greyscale
  out.write(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  out.write(pngChunk('IHDR', ihdr));
  const deflate = createDeflate({ level: 9 });
  deflate.on('data', (chunk: Buffer) => out.write(pngChunk('IDAT', chunk)));
  const ended = once(deflate, 'end');
  const rowBytes = 1 + Math.ceil(size / 8); // filter byte 0 + packed bits
  const rowsPerWrite = 1000;
  const block = Buffer.alloc(rowBytes * rowsPerWrite);
  for (let row = 0; row < size; row += rowsPerWrite) {
    const rows = Math.min(rowsPerWrite, size - row);
    if (!deflate.write(block.subarray(0, rows * rowBytes))) await once(deflate, 'drain');
  }
  deflate.end();
  await ended;
  out.end(pngChunk('IEND', Buffer.alloc(0)));
  await once(out, 'finish');
}

/** The first 64 KiB of the Node binary: real ELF (or Mach-O/PE) bytes. */
export async function writeExecutableHead(path: string): Promise<void> {
  const handle = await open(process.execPath, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0);
    await writeFile(path, buffer.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

/** Runs the bundled ffmpeg with lavfi sources to make a media fixture. */
export async function runFfmpeg(args: string[]): Promise<void> {
  const child = spawn(FFMPEG_PATH, ['-nostdin', '-hide_banner', '-v', 'error', '-y', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`ffmpeg fixture failed (${code}): ${stderr}`);
}

/** ffprobe's JSON (format + streams, with their tags) for assertions beyond what probe() returns. */
export async function ffprobeJson(path: string): Promise<{
  format: { tags?: Record<string, string> };
  streams: Array<{ codec_type: string; tags?: Record<string, string> }>;
}> {
  const args = ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', path];
  const child = spawn(FFPROBE_PATH, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`ffprobe failed on ${path} (${code})`);
  return JSON.parse(stdout);
}

/** 2 s 320×240 test pattern at 25 fps with a 440 Hz tone, H.264 + AAC in mp4; `extra` output options. */
export function writeTestVideo(path: string, seconds = 2, extra: string[] = []): Promise<void> {
  return runFfmpeg([
    ...['-f', 'lavfi', '-i', `testsrc=duration=${seconds}:size=320x240:rate=25`],
    ...['-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest'],
    ...extra,
    path,
  ]);
}

/** A sine tone encoded by extension: .mp3 (libmp3lame), .wav (PCM), .webm (Opus, audio-only). */
export function writeTestAudio(path: string, seconds = 2): Promise<void> {
  const codec = path.endsWith('.mp3')
    ? ['-c:a', 'libmp3lame', '-b:a', '96k']
    : path.endsWith('.webm')
      ? ['-c:a', 'libopus', '-b:a', '64k']
      : ['-c:a', 'pcm_s16le'];
  return runFfmpeg(['-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`, ...codec, path]);
}

/**
 * A standard-security (RC4, R2) encryption dictionary whose /U entry matches no password, the empty one
 * included: a reader must ask for a password.
 */
const ENCRYPTION =
  ` /Encrypt << /Filter /Standard /V 1 /R 2 /Length 40 /P -4 /O <${'11'.repeat(32)}> /U <${'22'.repeat(32)}> >>` +
  ` /ID [<${'33'.repeat(16)}> <${'33'.repeat(16)}>]`;

/**
 * A minimal valid PDF written by hand: one page per entry of `pages`, each showing its text in Helvetica, with
 * a correct xref table (byte offsets computed as the file is assembled).
 */
export function buildPdf(pages: string[], options: { encrypted?: boolean } = {}): Buffer {
  const objects: string[] = [];
  const pageIds = pages.map((_, i) => 4 + i * 2);
  objects[1] = '<< /Type /Catalog /Pages 2 0 R >>';
  objects[2] = `<< /Type /Pages /Kids [${pageIds.map((id) => `${id} 0 R`).join(' ')}] /Count ${pages.length} >>`;
  objects[3] = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>';
  pages.forEach((text, i) => {
    const pageId = pageIds[i]!;
    const escaped = text.replace(/[\\()]/g, (c) => `\\${c}`);
    const stream = `BT /F1 24 Tf 72 720 Td (${escaped}) Tj ET`;
    objects[pageId] =
      '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] ' +
      `/Resources << /Font << /F1 3 0 R >> >> /Contents ${pageId + 1} 0 R >>`;
    objects[pageId + 1] =
      `<< /Length ${Buffer.byteLength(stream, 'latin1')} >>\nstream\n${stream}\nendstream`;
  });
  let body = '%PDF-1.4\n';
  const offsets: number[] = [];
  for (let id = 1; id < objects.length; id++) {
    offsets[id] = Buffer.byteLength(body, 'latin1');
    body += `${id} 0 obj\n${objects[id]}\nendobj\n`;
  }
  const xrefAt = Buffer.byteLength(body, 'latin1');
  const entries = offsets.slice(1).map((o) => `${String(o).padStart(10, '0')} 00000 n \n`);
  body += `xref\n0 ${objects.length}\n0000000000 65535 f \n${entries.join('')}`;
  body += `trailer\n<< /Size ${objects.length} /Root 1 0 R${options.encrypted ? ENCRYPTION : ''} >>\n`;
  body += `startxref\n${xrefAt}\n%%EOF\n`;
  return Buffer.from(body, 'latin1');
}
