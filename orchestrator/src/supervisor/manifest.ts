import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serviceNameSchema } from '@aiva/shared';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/** orchestrator/services.yaml (from src/supervisor/ and dist/supervisor/ alike). */
export const DEFAULT_MANIFEST_FILE = fileURLToPath(new URL('../../services.yaml', import.meta.url));

/** The repository root: the manifest's `dir`s are relative to it, and it is the processes' working directory. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** One service of the manifest: how to run it as a process. */
export interface ServiceDefinition {
  /** `auth`, `users`, `gateway`: slot names, log prefixes and the registry use it. */
  name: string;
  /** Its workspace package (`@aiva/users`), for people: the orchestrator only runs its files. */
  package: string;
  /** Package directory relative to the manifest's root (`subgraphs/users`). */
  dir: string;
  /** Built entry point relative to `dir` (`dist/main.js`). */
  entry: string;
  /** TypeScript entry point relative to `dir` (`src/main.ts`), run with tsx in development. */
  source: string;
  /** Port of the first instance; further instances get port 0 (the OS picks one). */
  port: number;
  /** The variable the service reads its port from (`USERS_PORT`). */
  portVariable: string;
  kind: 'subgraph' | 'gateway';
  /** Files besides the source that watch mode restarts on, relative to `dir` (`schema.graphql`). */
  watch: string[];
  /** Node options of its process (`--max-old-space-size=160`), before the entry point. */
  nodeOptions: string[];
  /** Variables its processes get unless the environment sets them (`MALLOC_ARENA_MAX: "2"`). */
  env: Record<string, string>;
}

/** The services to run, in start order. */
export interface ServiceManifest {
  /** The manifest file that was loaded (absolute). */
  file: string;
  /** Absolute directory the services' `dir`s are relative to; the processes' working directory. */
  rootDir: string;
  services: ServiceDefinition[];
}

/** Thrown when the manifest is unusable. Names each bad entry and field. */
export class ServiceManifestError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`Invalid service manifest ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ServiceManifestError';
  }
}

const relativePath = z
  .string()
  .min(1, 'must be a non-empty path')
  .refine((path) => !isAbsolute(path) && !normalize(path).startsWith('..'), 'must be a relative path inside');

const serviceSchema = z.strictObject({
  name: serviceNameSchema,
  package: z
    .string()
    .regex(/^(@[a-z0-9-]+\/)?[a-z0-9][a-z0-9._-]*$/, 'must be a package name like @aiva/users'),
  dir: relativePath,
  entry: relativePath,
  source: relativePath,
  port: z.number().int().min(1).max(65535),
  portVariable: z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'must be an environment variable name like USERS_PORT'),
  kind: z.enum(['subgraph', 'gateway']),
  watch: z.array(relativePath).default([]),
  nodeOptions: z
    .array(
      z
        .string()
        .regex(/^--[a-z0-9-]+(=[A-Za-z0-9._,:-]+)?$/, 'must be a Node option like --max-old-space-size=160'),
    )
    .default([]),
  env: z
    .record(z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'must be an environment variable name'), z.string())
    .default({}),
});

const manifestSchema = z.strictObject({
  services: z.array(serviceSchema).min(1, 'must list at least one service'),
});

export interface LoadServiceManifestOptions {
  /** What `dir`s are relative to; default the repository root. */
  rootDir?: string;
}

/**
 * Reads and validates the service manifest (default orchestrator/services.yaml). Throws ServiceManifestError
 * naming every bad entry and field: `services[1] (users).port: ...`, duplicate names, ports or port
 * variables, a `dir` or `source` that does not exist. The built `entry` may not exist yet (before a build).
 */
export function loadServiceManifest(
  file: string = DEFAULT_MANIFEST_FILE,
  options: LoadServiceManifestOptions = {},
): ServiceManifest {
  const manifestFile = resolve(file);
  const rootDir = resolve(options.rootDir ?? REPO_ROOT);
  const document = readDocument(manifestFile);
  const result = manifestSchema.safeParse(document ?? {});
  if (!result.success) {
    throw new ServiceManifestError(
      manifestFile,
      result.error.issues.map((issue) => describeIssue(issue, document)),
    );
  }
  const services = result.data.services;
  const problems = [...duplicateProblems(services), ...fileProblems(services, rootDir)];
  if (problems.length > 0) throw new ServiceManifestError(manifestFile, problems);
  return { file: manifestFile, rootDir, services };
}

function readDocument(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ServiceManifestError(file, [`cannot read the manifest: ${errorMessage(error)}`]);
  }
  try {
    return parseYaml(text);
  } catch (error) {
    throw new ServiceManifestError(file, [`not valid YAML: ${errorMessage(error)}`]);
  }
}

/** `services[1] (users).port: ...`: the entry by position and, when it has one, by name. */
function entryLabel(index: number, name: unknown): string {
  return typeof name === 'string' && name !== '' ? `services[${index}] (${name})` : `services[${index}]`;
}

function describeIssue(issue: z.core.$ZodIssue, document: unknown): string {
  const [first, index, ...rest] = issue.path;
  const missing = issue.code === 'invalid_type' && valueAt(document, issue.path) === undefined;
  const message = missing ? 'is required' : issue.message;
  if (first === 'services' && typeof index === 'number') {
    const services = (document as { services?: Array<{ name?: unknown } | null> }).services;
    const entry = entryLabel(index, services?.[index]?.name);
    return `${[entry, ...rest.map(String)].join('.')}: ${message}`;
  }
  return `${issue.path.map(String).join('.') || '(top level)'}: ${message}`;
}

/** The value at `path` in the parsed YAML (zod's issues do not carry the input unless asked to). */
function valueAt(document: unknown, path: readonly PropertyKey[]): unknown {
  let value = document;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function duplicateProblems(services: readonly ServiceDefinition[]): string[] {
  const problems: string[] = [];
  for (const field of ['name', 'port', 'portVariable'] as const) {
    const firstSeen = new Map<unknown, number>();
    services.forEach((service, index) => {
      const earlier = firstSeen.get(service[field]);
      if (earlier === undefined) firstSeen.set(service[field], index);
      else
        problems.push(
          `${entryLabel(index, service.name)}.${field}: ${String(service[field])} is already used by ` +
            entryLabel(earlier, services[earlier]?.name),
        );
    });
  }
  return problems;
}

function fileProblems(services: readonly ServiceDefinition[], rootDir: string): string[] {
  const problems: string[] = [];
  services.forEach((service, index) => {
    const dir = join(rootDir, service.dir);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      problems.push(`${entryLabel(index, service.name)}.dir: ${dir} is not a directory`);
    } else if (!existsSync(join(dir, service.source))) {
      problems.push(`${entryLabel(index, service.name)}.source: ${join(dir, service.source)} does not exist`);
    }
  });
  return problems;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
