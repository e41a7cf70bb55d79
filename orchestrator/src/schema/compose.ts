import { type CompositionResult, type CompositionSuccess, composeServices } from '@apollo/composition';
import {
  ROUTER_SUPPORTED_SUPERGRAPH_FEATURES,
  type ServiceDefinition,
  Supergraph,
} from '@apollo/federation-internals';
import { type DocumentNode, GraphQLError, type GraphQLSchema, parse } from 'graphql';
import type { SupergraphConfig } from './supergraph-config.js';

export interface SubgraphInput {
  name: string;
  /** The routing URL recorded in the supergraph (`@join__graph(url:)`). */
  url: string;
  sdl: string;
}

export type CompositionOutcome =
  | { ok: true; supergraphSdl: string; hints: string[] }
  | { ok: false; errors: string[]; hints: string[] };

/**
 * Composes subgraphs into a Federation 2 supergraph SDL, the way `rover supergraph compose` does.
 * Never throws for bad input: SDL syntax errors and composition errors come back as `errors`,
 * each naming the subgraph(s) involved. The result is deterministic: subgraphs are composed in
 * name order (as rover does) and the SDL always ends with exactly one newline.
 */
export function composeSupergraph(subgraphs: readonly SubgraphInput[]): CompositionOutcome {
  const inputProblems = checkSubgraphList(subgraphs);
  if (inputProblems.length > 0) return { ok: false, errors: inputProblems, hints: [] };

  const ordered = [...subgraphs].sort((a, b) => compareNames(a.name, b.name));
  const parsed = ordered.map(parseSubgraph);
  const syntaxErrors = parsed.flatMap((p) => ('error' in p ? [p.error] : []));
  if (syntaxErrors.length > 0) return { ok: false, errors: syntaxErrors, hints: [] };
  const services = parsed.flatMap((p) => ('service' in p ? [p.service] : []));

  const result = runComposition(services);
  if (result.errors) return { ok: false, errors: result.errors.map(formatError), hints: [] };
  return {
    ok: true,
    supergraphSdl: withTrailingNewline(result.supergraphSdl),
    hints: result.hints.map(formatHint),
  };
}

/** Composes the subgraphs of a loaded supergraph.yaml. */
export function composeFromConfig(config: SupergraphConfig): CompositionOutcome {
  return composeSupergraph(config.subgraphs.map((s) => ({ name: s.name, url: s.routingUrl, sdl: s.sdl })));
}

/**
 * The client-facing API schema of a supergraph: join/link machinery and `@inaccessible` elements removed.
 * Throws if the SDL is not a valid supergraph.
 */
export function apiSchemaOf(supergraphSdl: string): GraphQLSchema {
  const supergraph = Supergraph.build(supergraphSdl, {
    supportedFeatures: ROUTER_SUPPORTED_SUPERGRAPH_FEATURES,
  });
  return supergraph.apiSchema().toGraphQLJSSchema();
}

function checkSubgraphList(subgraphs: readonly SubgraphInput[]): string[] {
  if (subgraphs.length === 0) return ['no subgraphs to compose'];
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const { name } of subgraphs) {
    if (seen.has(name)) problems.push(`subgraph "${name}" is listed more than once`);
    seen.add(name);
  }
  return problems;
}

function parseSubgraph(subgraph: SubgraphInput): { service: ServiceDefinition } | { error: string } {
  let typeDefs: DocumentNode;
  try {
    typeDefs = parse(subgraph.sdl);
  } catch (error) {
    return { error: `[${subgraph.name}] SDL syntax error: ${describeSyntaxError(error)}` };
  }
  return { service: { name: subgraph.name, url: subgraph.url, typeDefs } };
}

function describeSyntaxError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const location = error instanceof GraphQLError ? error.locations?.[0] : undefined;
  return location ? `${error.message} (line ${location.line}, column ${location.column})` : error.message;
}

type CompositionHint = CompositionSuccess['hints'][number];

function runComposition(services: ServiceDefinition[]): CompositionResult {
  try {
    return composeServices(services);
  } catch (error) {
    // composeServices reports problems as errors; a throw is an internal failure, still reported, not raised.
    const message = error instanceof Error ? error.message : String(error);
    return { errors: [new GraphQLError(`composition failed unexpectedly: ${message}`)] };
  }
}

function formatError(error: GraphQLError): string {
  const code = error.extensions?.code;
  return typeof code === 'string' && code !== '' ? `${code}: ${error.message}` : error.message;
}

function formatHint(hint: CompositionHint): string {
  return `${hint.definition.code}: ${hint.message}`;
}

function withTrailingNewline(sdl: string): string {
  return `${sdl.replace(/\s+$/, '')}\n`;
}

/** Code-point order, independent of the machine's locale. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
