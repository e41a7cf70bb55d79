import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Kind, parse, type StringValueNode } from 'graphql';
import { z } from 'zod';

/** The committed, composed supergraph at the repository root (written by `pnpm schema:compose`). */
export const DEFAULT_SUPERGRAPH_PATH = fileURLToPath(new URL('../../../supergraph.graphql', import.meta.url));

export interface SubgraphEndpoint {
  name: string;
  url: string;
}

export function readSupergraph(path: string = DEFAULT_SUPERGRAPH_PATH): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(
      `Cannot read the supergraph at ${path} (run \`pnpm schema:compose\`): ${(error as Error).message}`,
    );
  }
}

/** The subgraphs a supergraph routes to: the `@join__graph(name:, url:)` values of its `join__Graph` enum. */
export function subgraphsOf(supergraphSdl: string): SubgraphEndpoint[] {
  const document = parse(supergraphSdl);
  const endpoints: SubgraphEndpoint[] = [];
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.ENUM_TYPE_DEFINITION || definition.name.value !== 'join__Graph') continue;
    for (const value of definition.values ?? []) {
      const directive = value.directives?.find((d) => d.name.value === 'join__graph');
      const arg = (name: string) =>
        (directive?.arguments?.find((a) => a.name.value === name)?.value as StringValueNode | undefined)
          ?.value;
      const name = arg('name');
      const url = arg('url');
      if (name && url) endpoints.push({ name, url });
    }
  }
  return endpoints;
}

/**
 * Subgraph URL overrides: `SUBGRAPH_<NAME>_URL` (e.g. SUBGRAPH_USERS_URL) replaces the routing URL the
 * supergraph was composed with.
 */
export function subgraphUrlOverrides(environment: Record<string, string | undefined> = process.env) {
  const overrides: Record<string, string> = {};
  for (const [key, value] of Object.entries(environment)) {
    const match = /^SUBGRAPH_([A-Z0-9_]+)_URL$/.exec(key);
    if (match?.[1] && value) overrides[match[1].toLowerCase().replaceAll('_', '-')] = z.url().parse(value);
  }
  return overrides;
}

/**
 * Where each subgraph is when no orchestrator was ever reached: the supergraph's routing URLs, with
 * `SUBGRAPH_<NAME>_URL` overrides. A missing supergraph file gives just the overrides.
 */
export function staticSubgraphUrls(
  environment: Record<string, string | undefined> = process.env,
  supergraphPath: string = environment.SUPERGRAPH_PATH ?? DEFAULT_SUPERGRAPH_PATH,
): Record<string, string> {
  let fromSupergraph: SubgraphEndpoint[] = [];
  try {
    fromSupergraph = subgraphsOf(readSupergraph(supergraphPath));
  } catch {
    // no committed supergraph next to this service: overrides only
  }
  return {
    ...Object.fromEntries(fromSupergraph.map((s) => [s.name, s.url])),
    ...subgraphUrlOverrides(environment),
  };
}
