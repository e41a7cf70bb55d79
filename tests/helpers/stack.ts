import {
  createMemoryBus,
  createMemoryCache,
  createSubgraphServer,
  type EventBus,
  type GraphQLHttpServer,
  loadConfig,
  sessionRevocations,
} from '@aiva/shared';
import { bearer, graphql } from '@aiva/shared/testing';
import {
  createUsersApp,
  openSqliteUserStore,
  type UserStore,
  type UsersApp,
  usersEnvSchema,
  usersTypeDefs,
} from '@aiva/users';
import { parse } from 'graphql';
import {
  type GatewayUnderTest,
  silentLogger,
  startGatewayWith,
  tokens,
} from '../../gateway/test/helpers/echo-stack.js';

export { bearer, type GraphQLResult, graphql } from '@aiva/shared/testing';
export { type GatewayUnderTest, silentLogger, tokens };

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
  // Revocation marks in memory: the test issuer's sessions are never ended, and no cache file is written.
  const app = await createUsersApp({
    config,
    logger: silentLogger,
    bus,
    store,
    verifier: tokens.verifier,
    revocations: sessionRevocations(createMemoryCache()),
  });
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

/** A gateway in this process over the given subgraphs, verifying the test issuer's tokens. */
export function startGateway(
  subgraphs: Array<{ name: string; url: string; typeDefs: ReturnType<typeof parse> }>,
  env: Record<string, string> = {},
): Promise<GatewayUnderTest> {
  return startGatewayWith({ subgraphs, env, verifier: tokens.verifier });
}

export { usersTypeDefs };
