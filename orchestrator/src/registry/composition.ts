import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type InstanceView, type Logger, sdlHash } from '@aiva/shared';
import { buildSubgraph, printSchema } from '@apollo/federation-internals';
import { composeSupergraph, type SubgraphInput } from '../schema/compose.js';
import { loadSupergraphConfig, type SupergraphConfig } from '../schema/supergraph-config.js';
import { graphqlUrlOf, type InstanceRecord } from './instance.js';

export type SupergraphMode = 'committed' | 'live';

/** Where one subgraph's SDL came from in a composition. */
export interface CompositionSource {
  service: string;
  /**
   * `instance`: served by a live instance; `file`: supergraph.yaml's schema file; `last-good`: a subgraph only
   * known from registrations, with no live instance now (restarting), kept as last composed.
   */
  from: 'instance' | 'file' | 'last-good';
  /** The instance whose SDL it is (`from: 'instance'`, and `last-good`: the one it came from). */
  instanceId: string | null;
  /** The schema file (`from: 'file'`). */
  file: string | null;
  sdlHash: string;
}

/** The supergraph gateways are told to serve. */
export interface ServedSupergraph {
  sdl: string;
  /** SHA-256 (hex) of the SDL. */
  hash: string;
  mode: SupergraphMode;
  /** When it was composed (live) or loaded (committed). */
  at: string;
  sources: CompositionSource[];
}

/** One composition (live) or load (committed), successful or not. */
export interface CompositionAttempt {
  ok: boolean;
  at: string;
  errors: string[];
  hints: string[];
  sources: CompositionSource[];
}

/** What the status page shows about the supergraph. */
export interface CompositionStatus {
  mode: SupergraphMode;
  /** The supergraph being served, null when none ever composed. */
  served: Omit<ServedSupergraph, 'sdl'> | null;
  /** The latest attempt: when it failed, `served` is the last good one. */
  lastAttempt: CompositionAttempt | null;
  /** Problems with supergraph.yaml or its schema files (schema checks fall back to `unknown`). */
  configProblems: string[];
}

/** An instance as the composer sees it: its record, its SDL when known, whether it is healthy. */
export interface ComposerInstance {
  record: InstanceRecord;
  sdl: string | undefined;
}

export interface SupergraphComposer {
  readonly mode: SupergraphMode;
  /** Live mode: recomposes when the set of SDLs changed. True when the served supergraph changed. */
  update(instances: readonly ComposerInstance[]): boolean;
  /**
   * The hash to record for an SDL an instance of `service` serves: its schema file's hash when the two define
   * the same subgraph (a subgraph's `_service { sdl }` prints its schema differently from the file), else
   * `sdlHash(sdl)`.
   */
  hashFor(service: string, sdl: string): string;
  /** Whether an instance serves the SDL its subgraph has in the served supergraph. */
  schemaOf(record: InstanceRecord): InstanceView['schema'];
  current(): ServedSupergraph | null;
  status(): CompositionStatus;
}

export interface ComposerOptions {
  mode: SupergraphMode;
  /** The committed supergraph (committed mode). */
  supergraphPath: string;
  /** supergraph.yaml: expected SDLs (committed), SDLs of subgraphs with no live instance (live). */
  configPath: string;
  logger: Logger;
  /** Called with each composition's outcome (metrics). */
  onOutcome?: (outcome: 'ok' | 'failed') => void;
}

/** The composer of the configured mode. */
export function createComposer(options: ComposerOptions): SupergraphComposer {
  const config = loadConfig(options.configPath, options.logger);
  const composer =
    options.mode === 'committed'
      ? createCommittedComposer(options, config)
      : createLiveComposer(options, config);
  const hashFor = fileEquivalence(config);
  return Object.assign(composer, { hashFor });
}

/** `hashFor`: an SDL equivalent to the subgraph's schema file gets the file's hash. */
function fileEquivalence(loaded: LoadedConfig): (service: string, sdl: string) => string {
  const fileFingerprints = new Map<string, string | undefined>();
  return (service, sdl) => {
    const hash = hashOfSdl(sdl);
    const fileHash = loaded.hashes.get(service);
    const file = loaded.config?.subgraphs.find((s) => s.name === service);
    if (fileHash === undefined || hash === fileHash || !file) return hash;
    if (!fileFingerprints.has(service)) fileFingerprints.set(service, subgraphFingerprint(service, file.sdl));
    const expected = fileFingerprints.get(service);
    return expected !== undefined && subgraphFingerprint(service, sdl) === expected ? fileHash : hash;
  };
}

/** The subgraph schema federation builds from an SDL, printed and hashed; undefined when it does not build. */
function subgraphFingerprint(service: string, sdl: string): string | undefined {
  try {
    return sha256(printSchema(buildSubgraph(service, 'http://subgraph.invalid/graphql', sdl).schema));
  } catch {
    return undefined;
  }
}

type ModeComposer = Omit<SupergraphComposer, 'hashFor'>;

interface LoadedConfig {
  config: SupergraphConfig | null;
  problems: string[];
  /** `sdlHash` of each subgraph's schema file. */
  hashes: Map<string, string>;
}

function loadConfig(path: string, logger: Logger): LoadedConfig {
  try {
    const config = loadSupergraphConfig(path);
    return { config, problems: [], hashes: new Map(config.subgraphs.map((s) => [s.name, hashOfSdl(s.sdl)])) };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    logger.error({ err: message }, 'cannot load the supergraph config: schema checks are off');
    return { config: null, problems: [message], hashes: new Map() };
  }
}

/**
 * Committed mode (production): serves only the committed supergraph file (hash: SHA-256 of the file). An
 * instance's SDL must hash like the schema file supergraph.yaml names for its subgraph; an instance of another
 * SDL, or of a subgraph the supergraph does not have, is a mismatch (shown, never routed to).
 */
function createCommittedComposer(options: ComposerOptions, loaded: LoadedConfig): ModeComposer {
  const at = new Date().toISOString();
  const sources: CompositionSource[] = (loaded.config?.subgraphs ?? []).map((s) => ({
    service: s.name,
    from: 'file',
    instanceId: null,
    file: s.schemaFile,
    sdlHash: loaded.hashes.get(s.name)!,
  }));
  let served: ServedSupergraph | null = null;
  let attempt: CompositionAttempt;
  try {
    const sdl = readFileSync(options.supergraphPath, 'utf8');
    served = { sdl, hash: sha256(sdl), mode: 'committed', at, sources };
    attempt = { ok: true, at, errors: [], hints: [], sources };
    options.logger.info(
      { file: options.supergraphPath, hash: served.hash },
      'serving the committed supergraph',
    );
  } catch (error) {
    const message = `cannot read ${options.supergraphPath}: ${(error as Error).message}`;
    attempt = { ok: false, at, errors: [message], hints: [], sources };
    options.logger.error({ err: message }, 'no supergraph to serve (run `pnpm schema:compose`)');
  }
  options.onOutcome?.(attempt.ok ? 'ok' : 'failed');

  return {
    mode: 'committed',
    update: () => false,
    schemaOf(record) {
      if (record.kind === 'gateway' || !loaded.config) return 'unknown';
      const expected = loaded.hashes.get(record.service);
      if (expected === undefined) return 'mismatch';
      if (record.sdlHash === null) return 'unknown';
      return record.sdlHash === expected ? 'ok' : 'mismatch';
    },
    current: () => served,
    status: () => ({
      mode: 'committed',
      served: served && withoutSdl(served),
      lastAttempt: attempt,
      configProblems: loaded.problems,
    }),
  };
}

/**
 * Live mode (development): composes from the SDL the live instances serve. Per subgraph the SDL of its most
 * recently started healthy instance; a subgraph of supergraph.yaml with no such instance uses its schema file
 * (the supergraph stays complete while it restarts); a registered subgraph supergraph.yaml does not name is
 * composed too, routed at its instance's URL, and while it has no live instance (restarting on an edit) with
 * the SDL it had in the last good composition. Recomposes only when that set of SDLs changes. A failed
 * composition never replaces the last good one: it is kept for the status page and the log. Instances whose SDL
 * differs from the one composed for their subgraph are mismatches.
 */
function createLiveComposer(options: ComposerOptions, loaded: LoadedConfig): ModeComposer {
  const fileSubgraphs = new Map((loaded.config?.subgraphs ?? []).map((s) => [s.name, s]));
  let served: ServedSupergraph | null = null;
  let attempt: CompositionAttempt | null = null;
  let attemptedKey: string | undefined;
  let expected = new Map<string, string>();
  /** Subgraphs not in supergraph.yaml, as they were in the last good composition. */
  let lastGood = new Map<string, { input: SubgraphInput; source: CompositionSource }>();

  function inputs(
    instances: readonly ComposerInstance[],
  ): Array<{ input: SubgraphInput; source: CompositionSource }> {
    const newest = new Map<string, ComposerInstance>();
    for (const instance of instances) {
      const { record } = instance;
      if (record.kind !== 'subgraph' || record.health.state !== 'healthy' || !instance.sdl || !record.sdlHash)
        continue;
      const known = newest.get(record.service);
      if (!known || isNewer(record, known.record)) newest.set(record.service, instance);
    }
    const names = new Set([...fileSubgraphs.keys(), ...newest.keys(), ...lastGood.keys()]);
    return [...names].sort().map((name) => {
      const live = newest.get(name);
      const file = fileSubgraphs.get(name);
      const kept = lastGood.get(name);
      if (!live && !file && kept) return { input: kept.input, source: { ...kept.source, from: 'last-good' } };
      if (live) {
        return {
          input: { name, url: file?.routingUrl ?? graphqlUrlOf(live.record), sdl: live.sdl! },
          source: {
            service: name,
            from: 'instance',
            instanceId: live.record.instanceId,
            file: null,
            sdlHash: live.record.sdlHash!,
          },
        };
      }
      return {
        input: { name, url: file!.routingUrl, sdl: file!.sdl },
        source: {
          service: name,
          from: 'file',
          instanceId: null,
          file: file!.schemaFile,
          sdlHash: loaded.hashes.get(name)!,
        },
      };
    });
  }

  return {
    mode: 'live',
    update(instances) {
      const planned = inputs(instances);
      const key = JSON.stringify(planned.map(({ source }) => [source.service, source.sdlHash]));
      const sources = planned.map((p) => p.source);
      if (key === attemptedKey) {
        // The same SDLs from other instances (or a file): nothing to compose, but say where they come from.
        if (attempt?.ok && served) served = { ...served, sources };
        if (attempt) attempt = { ...attempt, sources };
        return false;
      }
      attemptedKey = key;
      const at = new Date().toISOString();
      const outcome = composeSupergraph(planned.map((p) => p.input));
      options.onOutcome?.(outcome.ok ? 'ok' : 'failed');
      if (!outcome.ok) {
        attempt = { ok: false, at, errors: outcome.errors, hints: outcome.hints, sources };
        options.logger.error(
          { errors: outcome.errors, keeping: served?.hash ?? null },
          'live composition failed: keeping the last good supergraph',
        );
        return false;
      }
      attempt = { ok: true, at, errors: [], hints: outcome.hints, sources };
      lastGood = new Map(
        planned.filter((p) => !fileSubgraphs.has(p.source.service)).map((p) => [p.source.service, p]),
      );
      const hash = sha256(outcome.supergraphSdl);
      expected = new Map(sources.map((s) => [s.service, s.sdlHash]));
      if (served?.hash === hash) {
        served = { ...served, sources };
        return false;
      }
      served = { sdl: outcome.supergraphSdl, hash, mode: 'live', at, sources };
      options.logger.info(
        { hash, sources: sources.map((s) => `${s.service}:${s.instanceId ?? 'file'}`) },
        'live supergraph composed',
      );
      return true;
    },
    schemaOf(record) {
      if (record.kind === 'gateway' || !served) return 'unknown';
      const composed = expected.get(record.service);
      if (composed === undefined) return 'mismatch';
      if (record.sdlHash === null) return 'unknown';
      return record.sdlHash === composed ? 'ok' : 'mismatch';
    },
    current: () => served,
    status: () => ({
      mode: 'live',
      served: served && withoutSdl(served),
      lastAttempt: attempt,
      configProblems: loaded.problems,
    }),
  };
}

function isNewer(a: InstanceRecord, b: InstanceRecord): boolean {
  const started = Date.parse(a.startedAt) - Date.parse(b.startedAt);
  return started !== 0 ? started > 0 : Date.parse(a.registeredAt) > Date.parse(b.registeredAt);
}

function withoutSdl(served: ServedSupergraph): Omit<ServedSupergraph, 'sdl'> {
  const { sdl: _sdl, ...rest } = served;
  return rest;
}

/** `sdlHash`, or the hash of the raw text when the SDL does not even parse (composition will say why). */
export function hashOfSdl(sdl: string): string {
  try {
    return sdlHash(sdl);
  } catch {
    return sha256(sdl);
  }
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
