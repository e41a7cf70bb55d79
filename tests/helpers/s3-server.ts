import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT, type Spawned, spawnNode } from '../system/helpers/system.js';

// A real S3-speaking server for tests: s3rver (https://github.com/jamhall/s3rver) run through its own CLI as a
// separate Node process, on a port the OS picks, storing into a temp directory. s3rver is a dev dependency of
// @aiva/media, so it is resolved from that package.

/** A running s3rver process and what an S3 client needs to reach it. */
export interface S3TestServer {
  /** `http://127.0.0.1:<port>`; use with `forcePathStyle: true` and region `us-east-1`. */
  endpoint: string;
  /** A bucket created at startup. */
  bucket: string;
  accessKeyId: 'S3RVER';
  secretAccessKey: 'S3RVER';
  stop(): Promise<void>;
}

/** The s3rver CLI script, resolved from subgraphs/media (which lists s3rver as a dev dependency). */
function s3rverCli(): string {
  const require = createRequire(join(ROOT, 'subgraphs/media/package.json'));
  return join(dirname(require.resolve('s3rver/package.json')), 'bin/s3rver.js');
}

/**
 * Starts s3rver on 127.0.0.1 with a free port (`-p 0`; the CLI prints the port it got), silent, with `bucket`
 * configured; resolves once it listens. `stop` ends the process and removes its directory.
 */
export async function startS3Server(options: { bucket?: string } = {}): Promise<S3TestServer> {
  const bucket = options.bucket ?? 'aiva-media-test';
  const dir = mkdtempSync(join(tmpdir(), 'aiva-s3rver-'));
  const spawned: Spawned = spawnNode(
    [s3rverCli(), '-d', dir, '-a', '127.0.0.1', '-p', '0', '--silent', '--configure-bucket', bucket],
    { PATH: process.env.PATH ?? '' },
    { plain: true },
  );
  let line: string;
  try {
    line = await spawned.waitForLine(/S3rver listening on/, 30_000);
  } catch (error) {
    spawned.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`s3rver did not start: ${spawned.lines.join('\n')}`, { cause: error });
  }
  const port = /:(\d+)\s*$/.exec(line)?.[1];
  if (!port) throw new Error(`s3rver printed no port: ${line}`);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    async stop() {
      if (spawned.child.exitCode === null && spawned.child.signalCode === null) {
        spawned.child.kill('SIGTERM');
        await spawned.exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
