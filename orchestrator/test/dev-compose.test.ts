import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { composeForDev } from '../src/launch/dev-compose.js';
import { silentLogger } from './helpers/stack.js';

const dir = mkdtempSync(join(tmpdir(), 'aiva-dev-compose-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(sdl: string): string {
  writeFileSync(join(dir, 'things.graphql'), sdl);
  const file = join(dir, 'supergraph.yaml');
  writeFileSync(
    file,
    'federation_version: =2.14.4\nsubgraphs:\n  things:\n    routing_url: http://127.0.0.1:4999/graphql\n    schema:\n      file: ./things.graphql\n',
  );
  return file;
}

describe('composeForDev (pnpm dev)', () => {
  it('composes the SDL files as they are on disk', () => {
    const sdl = composeForDev(silentLogger, config('type Query { thing: String }'));
    expect(sdl).toContain('join__graph(name: "things", url: "http://127.0.0.1:4999/graphql")');
    expect(sdl).toContain('thing: String');
  });

  it('composes the repository supergraph.yaml', () => {
    expect(composeForDev(silentLogger)).toContain('join__graph(name: "auth"');
  });

  it('logs and returns nothing when the SDL does not compose, so the last good supergraph is served', () => {
    const logger = { ...silentLogger, error: vi.fn() } as unknown as typeof silentLogger;
    expect(composeForDev(logger, config('type Query { thing: Strin'))).toBeUndefined();
    expect(logger.error).toHaveBeenCalledWith(
      expect.objectContaining({ errors: [expect.stringContaining('things')] }),
      expect.stringContaining('serving the committed supergraph.graphql'),
    );
  });
});
