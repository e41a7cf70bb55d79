import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bearer, graphql } from '@aiva/shared/testing';
import sharp from 'sharp';
import { processFile, sniffFile } from '../../subgraphs/media/src/processing/index.js';
import { writeTestVideo } from '../../subgraphs/media/test/processing/fixtures.js';
import { tusPatch } from '../helpers/tus.js';
import { startSystem } from '../system/helpers/system.js';

/**
 * The media subgraph measured (`pnpm bench:media`), AIVA as `pnpm start` runs it:
 * 1. upload throughput through the gateway's public port (tus PATCHes of BENCH_CHUNK_MIB), a BENCH_UPLOAD_MIB
 *    file: the transfer, then the completion (the last PATCH: hash, type sniffing, move into storage);
 * 2. image processing time per megapixel (the whole pipeline: header check, re-encoded original, WebP and AVIF
 *    at three sizes), in this process, JPEGs of 4, 12 and 24 MP, the median of three runs;
 * 3. the media process's peak RSS while it processes four 12 MP images at once (MEDIA_PROCESSING_CONCURRENCY=4),
 *    sampled every 25 ms from /proc, against its idle RSS.
 */
const UPLOAD_MIB = Number(process.env.BENCH_UPLOAD_MIB ?? 256);
const CHUNK_MIB = Number(process.env.BENCH_CHUNK_MIB ?? 8);
const MIB = 1024 * 1024;

const work = mkdtempSync(join(tmpdir(), 'aiva-bench-media-'));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** A JPEG of `megapixels` (4:3) with photo-like noise, so encoders have real work. */
async function photo(megapixels: number): Promise<string> {
  const width = Math.round(Math.sqrt((megapixels * 1e6 * 4) / 3));
  const height = Math.round((width * 3) / 4);
  const path = join(work, `photo-${megapixels}mp.jpg`);
  const noise = { type: 'gaussian' as const, mean: 128, sigma: 40 };
  await sharp({ create: { width, height, channels: 3, background: '#808080', noise } })
    .blur(2)
    .jpeg({ quality: 88 })
    .toFile(path);
  return path;
}

async function processingPerMegapixel(): Promise<void> {
  const limits = {
    maxPixels: 100_000_000,
    maxDurationSeconds: 3600,
    maxPages: 500,
    maxTextChars: 1_000_000,
    timeoutMs: 600_000,
  };
  console.log('\nImage processing (original + thumbnail/medium/large as WebP and AVIF):');
  for (const megapixels of [4, 12, 24]) {
    const input = await photo(megapixels);
    const sniffed = await sniffFile(input);
    const runs: number[] = [];
    for (let run = 0; run < 3; run++) {
      const dir = join(work, `out-${megapixels}-${run}`);
      await mkdir(dir);
      const started = performance.now();
      await processFile(input, sniffed, dir, limits);
      runs.push(performance.now() - started);
    }
    const ms = median(runs);
    console.log(
      `  ${String(megapixels).padStart(2)} MP: ${(ms / 1000).toFixed(2)} s, ${(ms / megapixels).toFixed(0)} ms per megapixel`,
    );
  }
}

const system = await startSystem({
  env: {
    LOG_LEVEL: 'warn',
    MEDIA_MAX_VIDEO_BYTES: String((UPLOAD_MIB + 16) * MIB),
    MEDIA_QUOTA_BYTES: String(10 * 1024 * MIB),
    MEDIA_PROCESSING_CONCURRENCY: '4',
    AUTH_REQUESTS_PER_ADDRESS: '1000000',
  },
});
try {
  const signedUp = await graphql<{ signUp: { accessToken: string } }>(
    system.gatewayUrl,
    'mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }',
    {
      input: {
        email: 'bench-media@example.test',
        password: 'a long password',
        username: 'benchmedia',
        firstName: 'Bench',
        lastName: 'Media',
      },
    },
  );
  const token = signedUp.body.data?.signUp.accessToken ?? '';
  const call = <T>(query: string, variables: Record<string, unknown>) =>
    graphql<T>(system.gatewayUrl, query, variables, bearer(token));
  const createUpload = async (filename: string, mimeType: string, size: number) => {
    const result = await call<{ createUpload: { uploadUrl: string; media: { id: string } } }>(
      'mutation($input: CreateUploadInput!) { createUpload(input: $input) { uploadUrl media { id } } }',
      { input: { filename, mimeType, size } },
    );
    if (!result.body.data) throw new Error(`createUpload: ${JSON.stringify(result.body.errors)}`);
    return result.body.data.createUpload;
  };

  // The media process, for its memory (3).
  const status = (await (await fetch(`${system.orchestratorUrl}/v1/status`)).json()) as {
    processes: Array<{ service: string; pid: number }>;
  };
  const pid = status.processes.find((p) => p.service === 'media')?.pid;
  const rssMb = async () => {
    const text = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(text)?.[1] ?? 0) / 1024;
  };
  const fresh = await rssMb();

  // 1. Upload throughput: a real MP4's header followed by random bytes (typed as video/mp4 by its bytes).
  const clip = join(work, 'clip.mp4');
  await writeTestVideo(clip, 1);
  const head = await readFile(clip);
  const bytes = Buffer.concat([head, randomBytes(UPLOAD_MIB * MIB - head.length)]);
  const upload = await createUpload('big.mp4', 'video/mp4', bytes.length);
  const chunk = CHUNK_MIB * MIB;
  let offset = 0;
  const started = performance.now();
  let transferMs = 0;
  while (offset < bytes.length) {
    const last = offset + chunk >= bytes.length;
    const before = performance.now();
    const response = await tusPatch(upload.uploadUrl, bytes.subarray(offset, offset + chunk), offset);
    if (response.status !== 204) throw new Error(`PATCH ${response.status}: ${await response.text()}`);
    offset = Number(response.headers.get('upload-offset'));
    if (last) {
      transferMs = before - started;
      console.log(`\nUpload through the gateway (${UPLOAD_MIB} MiB in ${CHUNK_MIB} MiB PATCHes, loopback):`);
      const sent = bytes.length - chunk;
      console.log(`  transfer:   ${(sent / MIB / (transferMs / 1000)).toFixed(0)} MB/s`);
      console.log(
        `  completion: ${((performance.now() - before) / 1000).toFixed(2)} s for the last PATCH (hash, type, into storage)`,
      );
      console.log(
        `  overall:    ${(bytes.length / MIB / ((performance.now() - started) / 1000)).toFixed(0)} MB/s`,
      );
    }
  }

  // 3. Peak memory of the media process, four 12 MP images at once (after the failed processing of the random
  // "video" has passed).
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const idle = await rssMb();
  const image = await readFile(await photo(12));
  const uploads: Array<{ uploadUrl: string; media: { id: string } }> = [];
  for (let i = 0; i < 4; i++) {
    const created = await createUpload(`photo-${i}.jpg`, 'image/jpeg', image.length);
    // All but the last byte now: the four complete together below, so they are processed at once.
    await tusPatch(created.uploadUrl, image.subarray(0, image.length - 1), 0);
    uploads.push(created);
  }
  let peak = idle;
  const sampler = setInterval(() => {
    rssMb().then(
      (value) => {
        peak = Math.max(peak, value);
      },
      () => {},
    );
  }, 25);
  const processingStarted = performance.now();
  await Promise.all(
    uploads.map((u) => tusPatch(u.uploadUrl, image.subarray(image.length - 1), image.length - 1)),
  );
  const statusOf = async (id: string) => {
    const { body } = await call<{ media: { status: string } | null }>(
      'query($id: ID!) { media(id: $id) { status } }',
      { id },
    );
    if (!body.data?.media) throw new Error(`media ${id}: ${JSON.stringify(body)}`);
    return body.data.media.status;
  };
  for (;;) {
    const statuses = await Promise.all(uploads.map((u) => statusOf(u.media.id)));
    if (statuses.every((value) => value === 'READY' || value === 'FAILED')) {
      if (statuses.some((value) => value === 'FAILED')) throw new Error('an image failed');
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  clearInterval(sampler);
  console.log('\nFour 12 MP images processed at once by the media process:');
  console.log(`  ${((performance.now() - processingStarted) / 1000).toFixed(1)} s for the four`);
  console.log(
    `  RSS: at start ${fresh.toFixed(0)} MB, before ${idle.toFixed(0)} MB, peak ${peak.toFixed(0)} MB (+${(peak - idle).toFixed(0)} MB)`,
  );
} catch (error) {
  // What the media service said last, for the failure at hand.
  console.error(
    system.process.lines
      .filter((line) => line.startsWith('media'))
      .slice(-30)
      .join('\n'),
  );
  throw error;
} finally {
  await system.stop('SIGKILL');
}
await processingPerMegapixel();
rmSync(work, { recursive: true, force: true });
