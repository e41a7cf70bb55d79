import { readFileSync } from 'node:fs';
import { type DocumentNode, parse } from 'graphql';
import type { EventBus } from '../events/bus.js';
import type { Logger } from '../log.js';
import type { GraphQLHttpServer } from './graphql-http-server.js';

/**
 * A subgraph's SDL, parsed from its `schema.graphql` (the file supergraph.yaml composes: one source of truth),
 * e.g. `loadTypeDefs(new URL('../schema.graphql', import.meta.url))`.
 */
export function loadTypeDefs(schemaFile: URL): DocumentNode {
  return parse(readFileSync(schemaFile, 'utf8'));
}

/** What every subgraph app offers the launcher: made with nothing listening yet. */
export interface SubgraphApp {
  server: GraphQLHttpServer;
  /** Starts listening; resolves with the base URL (`http://host:port`). */
  listen(): Promise<string>;
  close(): Promise<void>;
}

/** What every subgraph app is made from. */
export interface SubgraphAppOptions<Config> {
  config: Config;
  logger?: Logger;
  /** An existing bus (tests, the all-in-one process); otherwise one is made from NATS_URL. */
  bus?: EventBus;
  /**
   * Register with the orchestrator (with REGISTRY_TOKEN) and follow its routing table; default true. Tests that
   * compose services in one process turn it off.
   */
  discovery?: boolean;
}
