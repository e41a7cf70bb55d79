import { createLogger, readSupergraph } from '@aiva/shared';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOperations } from '../src/operations.js';
import { createQueryPlanCache, queryPlanKeys, warmQueryPlans } from '../src/plan-warmer.js';

// The operations of the repository's `operations/` folders are planned into the gateway's plan cache when a
// supergraph loads, under the keys the gateway looks plans up by.

const logger = createLogger('test', { level: 'silent' });
const { operations, problems } = loadOperations();

/** A gateway on the committed supergraph; no subgraph runs (planning needs none). */
function gatewayOnSupergraph() {
  const cache = createQueryPlanCache(30);
  const gateway = new ApolloGateway({ supergraphSdl: readSupergraph(), queryPlannerConfig: { cache } });
  return { gateway, cache };
}

async function loadedGateway() {
  const made = gatewayOnSupergraph();
  await made.gateway.load();
  return made;
}

describe('stored operations', () => {
  it('are one named operation a file, in each subgraph folder', () => {
    expect(problems).toEqual([]);
    expect(operations.map((o) => o.owner)).toEqual(expect.arrayContaining(['users', 'auth']));
    const users = operations.find((o) => o.name === 'Users');
    expect(users).toMatchObject({ kind: 'query', file: 'subgraphs/users/operations/users.graphql' });
    expect(users?.description).toMatch(/^Admins only/);
  });
});

describe('query plan warming', () => {
  let loaded: Awaited<ReturnType<typeof loadedGateway>>;
  beforeAll(async () => {
    loaded = await loadedGateway();
  });
  afterAll(async () => {
    await loaded?.gateway.stop();
  });

  it('plans every stored operation against the committed supergraph', async () => {
    const planned = await warmQueryPlans({ ...loaded, operations, logger });
    expect(planned).toBe(operations.length);
    for (const operation of operations) {
      for (const key of queryPlanKeys(operation.document, operation.name)) {
        expect(await loaded.cache.get(key), operation.name).toMatchObject({ kind: 'QueryPlan' });
      }
    }
  });

  it('skips an operation the supergraph does not serve, and plans the rest', async () => {
    const [first] = operations;
    if (!first) throw new Error('no stored operation');
    const gone = { ...first, name: 'Gone', document: 'query Gone { noSuchField }' };
    const planned = await warmQueryPlans({ ...loaded, operations: [gone, first], logger });
    expect(planned).toBe(1);
    expect(await loaded.cache.get(queryPlanKeys(gone.document, 'Gone')[0] ?? '')).toBeUndefined();
  });
});

describe('plan cache keys', () => {
  it('are the keys the gateway stores the plans of its requests under', async () => {
    const { gateway, cache } = gatewayOnSupergraph();
    const server = new ApolloServer({ gateway, logger });
    await server.start();
    try {
      const users = operations.find((o) => o.name === 'Users');
      if (!users) throw new Error('no Users operation');
      const [named, unnamed] = queryPlanKeys(users.document, users.name);
      // No subgraph runs: the requests fail after planning, which is what is looked at.
      await server.executeOperation({ query: users.document, operationName: users.name });
      expect(await cache.get(named ?? '')).toMatchObject({ kind: 'QueryPlan' });
      expect(await cache.get(unnamed ?? '')).toBeUndefined();
      await server.executeOperation({ query: users.document });
      expect(await cache.get(unnamed ?? '')).toMatchObject({ kind: 'QueryPlan' });
    } finally {
      await server.stop();
    }
  });
});
