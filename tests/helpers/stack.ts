import { createGatewayApp, type GatewayApp, gatewayEnvSchema } from '@aiva/gateway';
import {
  createLogger,
  createMemoryBus,
  createSubgraphServer,
  type EventBus,
  type GraphQLHttpServer,
  loadConfig,
} from '@aiva/shared';
import { createTestTokenIssuer } from '@aiva/shared/testing';
import {
  createUsersApp,
  openSqliteUserStore,
  type UserStore,
  type UsersApp,
  usersEnvSchema,
  usersTypeDefs,
} from '@aiva/users';
import { parse, print } from 'graphql';
import { composeSupergraph } from '../../src/schema/compose.js';

export const silentLogger = createLogger('test', { level: 'silent' });

/** Mints access tokens the way auth does; every service started here verifies with its public key. */
export const tokens = await createTestTokenIssuer();

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
/** Headers of an admin caller. */
export const adminHeaders = bearer(await tokens.adminToken());

/** `graphql()` as an admin. */
export function adminGraphql<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
) {
  return graphql<T>(url, query, variables, adminHeaders);
}

export interface GraphQLResult<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: {
    data?: T | null;
    errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, unknown> }>;
  };
}

/** POSTs a GraphQL operation over real HTTP. */
export async function graphql<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<GraphQLResult<T>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as GraphQLResult<T>['body'],
  };
}

export interface UsersUnderTest {
  app: UsersApp;
  url: string;
  bus: EventBus;
  store: UserStore;
}

export async function startUsers(
  options: { store?: UserStore; bus?: EventBus } = {},
): Promise<UsersUnderTest> {
  const bus = options.bus ?? createMemoryBus();
  const store = options.store ?? openSqliteUserStore({ file: ':memory:' });
  const config = loadConfig(usersEnvSchema, { USERS_PORT: '0', LOG_LEVEL: 'silent' });
  const app = await createUsersApp({ config, logger: silentLogger, bus, store, verifier: tokens.verifier });
  const base = await app.listen();
  return { app, url: `${base}/graphql`, bus, store };
}

/**
 * A small subgraph that references users' `User` entity, so the gateway's query plans call users' `_entities`.
 */
export const postsTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
  type Post @key(fields: "id") { id: ID! title: String! author: User }
  type User @key(fields: "id", resolvable: false) { id: ID! }
  type Query { posts: [Post!]! }
`);

export async function startPosts(
  authorIds: () => string[],
): Promise<{ server: GraphQLHttpServer; url: string }> {
  const server = await createSubgraphServer({
    name: 'posts',
    logger: silentLogger,
    typeDefs: postsTypeDefs,
    resolvers: {
      Query: {
        posts: () => authorIds().map((id, i) => ({ id: `p${i}`, title: `Post ${i}`, author: { id } })),
      },
    },
  });
  const base = await server.listen({ port: 0, host: '127.0.0.1' });
  return { server, url: `${base}/graphql` };
}

export interface GatewayUnderTest {
  app: GatewayApp;
  url: string;
  base: string;
}

export async function startGateway(
  subgraphs: Array<{ name: string; url: string; typeDefs: ReturnType<typeof parse> }>,
  env: Record<string, string> = {},
): Promise<GatewayUnderTest> {
  const composed = composeSupergraph(
    subgraphs.map((s) => ({ name: s.name, url: s.url, sdl: print(s.typeDefs) })),
  );
  if (!composed.ok) throw new Error(`composition failed: ${composed.errors.join('; ')}`);
  const config = loadConfig(gatewayEnvSchema, { GATEWAY_PORT: '0', LOG_LEVEL: 'silent', ...env });
  const app = await createGatewayApp({
    config,
    logger: silentLogger,
    supergraphSdl: composed.supergraphSdl,
    subgraphUrls: {},
    verifier: tokens.verifier,
  });
  const base = await app.listen();
  return { app, url: `${base}/graphql`, base };
}

export { usersTypeDefs };
