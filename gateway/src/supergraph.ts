import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Kind, parse, type StringValueNode } from 'graphql';

/** The committed, composed supergraph at the repository root (written by `pnpm schema:compose`). */
export const DEFAULT_SUPERGRAPH_PATH = fileURLToPath(new URL('../../supergraph.graphql', import.meta.url));

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
