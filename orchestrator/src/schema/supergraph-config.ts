import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/** One subgraph of supergraph.yaml, with its schema file resolved and read. */
export interface SubgraphSource {
  name: string;
  routingUrl: string;
  /** Absolute path of the subgraph's SDL file. */
  schemaFile: string;
  sdl: string;
}

export interface SupergraphConfig {
  /** The config file that was loaded (absolute). */
  configFile: string;
  /** `federation_version` as written (e.g. `=2.14.4`), if present. */
  federationVersion: string | undefined;
  /** Subgraphs in name order, which is the order rover composes them in. */
  subgraphs: SubgraphSource[];
}

/** Thrown when supergraph.yaml (or a schema file it points at) is unusable. Names every problem. */
export class SupergraphConfigError extends Error {
  constructor(
    readonly configFile: string,
    readonly problems: string[],
  ) {
    super(`Invalid supergraph config ${configFile}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'SupergraphConfigError';
  }
}

// Rover's schema sources: `file`, `subgraph_url` (introspection), `graphref` + `subgraph` (GraphOS), `sdl` (inline).
// Only `file` can be composed offline from the repository; the others are recognised to give a precise error.
const schemaSourceSchema = z
  .object({
    file: z.string().min(1, 'must be a non-empty path').optional(),
  })
  .loose();

const subgraphEntrySchema = z.object({
  routing_url: z.string().min(1, 'must be a non-empty URL'),
  schema: schemaSourceSchema,
});

const configFileSchema = z.object({
  federation_version: z.union([z.string(), z.number()]).transform(String).optional(),
  subgraphs: z
    .record(z.string().min(1), subgraphEntrySchema)
    .refine((subgraphs) => Object.keys(subgraphs).length > 0, 'must list at least one subgraph'),
});

type ConfigFile = z.infer<typeof configFileSchema>;

/**
 * Reads and validates a rover-format supergraph.yaml, then reads every subgraph's schema file
 * (paths relative to the yaml file). Throws SupergraphConfigError naming each bad field or file.
 */
export function loadSupergraphConfig(path: string): SupergraphConfig {
  const configFile = resolve(path);
  const parsed = parseConfigFile(configFile, readConfigText(configFile));
  const problems: string[] = [];
  const subgraphs: SubgraphSource[] = [];
  for (const name of Object.keys(parsed.subgraphs).sort()) {
    const entry = parsed.subgraphs[name]!;
    const subgraph = readSubgraph(configFile, name, entry, problems);
    if (subgraph) subgraphs.push(subgraph);
  }
  if (problems.length > 0) throw new SupergraphConfigError(configFile, problems);
  return { configFile, federationVersion: parsed.federation_version, subgraphs };
}

function readConfigText(configFile: string): string {
  try {
    return readFileSync(configFile, 'utf8');
  } catch (error) {
    throw new SupergraphConfigError(configFile, [`cannot read the config file: ${errorMessage(error)}`]);
  }
}

function parseConfigFile(configFile: string, text: string): ConfigFile {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new SupergraphConfigError(configFile, [`not valid YAML: ${errorMessage(error)}`]);
  }
  const result = configFileSchema.safeParse(document ?? {});
  if (result.success) return result.data;
  throw new SupergraphConfigError(configFile, result.error.issues.map(describeIssue));
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const field = issue.path.map(String).join('.') || '(top level)';
  const missing = issue.code === 'invalid_type' && issue.input === undefined;
  return `${field}: ${missing ? 'is required' : issue.message}`;
}

function readSubgraph(
  configFile: string,
  name: string,
  entry: ConfigFile['subgraphs'][string],
  problems: string[],
): SubgraphSource | undefined {
  const field = `subgraphs.${name}.schema`;
  const relativeFile = entry.schema.file;
  if (relativeFile === undefined) {
    problems.push(unsupportedSourceProblem(field, entry.schema));
    return undefined;
  }
  const schemaFile = resolve(dirname(configFile), relativeFile);
  try {
    const sdl = readFileSync(schemaFile, 'utf8');
    return { name, routingUrl: entry.routing_url, schemaFile, sdl };
  } catch (error) {
    problems.push(`${field}.file: cannot read ${schemaFile}: ${errorMessage(error)}`);
    return undefined;
  }
}

function unsupportedSourceProblem(field: string, source: Record<string, unknown>): string {
  const keys = Object.keys(source);
  const found = keys.length > 0 ? `found ${keys.map((k) => `\`${k}\``).join(', ')}` : 'it is empty';
  return (
    `${field}: only \`file\` schema sources can be composed without rover (${found}); ` +
    'commit the subgraph SDL and point `schema.file` at it'
  );
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
