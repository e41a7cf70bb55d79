import { createHash } from 'node:crypto';
import { type DocumentNode, parse, print } from 'graphql';

/**
 * A subgraph SDL's fingerprint: SHA-256 (hex) of the SDL printed from its parsed form, so comments, blank lines
 * and formatting do not count, descriptions and every definition do. An instance reports the hash of the SDL it
 * serves; the orchestrator compares it with the hash of the file the committed supergraph was composed from.
 */
export function sdlHash(sdl: string | DocumentNode): string {
  const document = typeof sdl === 'string' ? parse(sdl) : sdl;
  return createHash('sha256').update(print(document)).digest('hex');
}
