import { registryToken } from '@aiva/shared';
import { bearer, graphql, waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue } from '../helpers/services.js';
import { freePort, type RunningSystem, type Spawned, spawnNode, startSystem } from '../helpers/system.js';

// Fault: a subgraph that takes longer than the request's budget (a fixture composed in by the orchestrator in
// development mode). The gateway waits for a subgraph only as long as its own budget (GRAPHQL_REQUEST_TIMEOUT_MS)
// and tells the subgraph what is left of it (x-aiva-deadline-ms): it answers in bounded time with the slow
// subgraph's fields failed (reason DEADLINE_EXCEEDED) and the other subgraphs' fields resolved; the subgraph
// abandons the request once the budget is spent (the fields after it never run).

const SECRET = 'a-registry-secret-for-the-slow-subgraph-test-0123';
const BUDGET_MS = 2_000;
const SLOW_MS = 4_000;
const QUERY = 'query($id: ID!) { user(id: $id) { id email } slow { after } }';
const EMAIL = 'slow@example.test';

let system: RunningSystem;
let slow: Spawned;
let slowBase = '';
let token = '';
let userId = '';

beforeAll(async () => {
  system = await startSystem({
    args: ['dev'],
    env: { REGISTRY_SECRET: SECRET, GRAPHQL_REQUEST_TIMEOUT_MS: String(BUDGET_MS) },
  });
  const slowPort = await freePort();
  slowBase = `http://127.0.0.1:${slowPort}`;
  slow = spawnNode(['tests/system/fixtures/slow-subgraph.ts'], {
    ...system.env,
    SLOW_PORT: String(slowPort),
    SLOW_MS: String(SLOW_MS),
    // Its own limit is long: only the gateway's budget (the header) can make it give up in time.
    GRAPHQL_REQUEST_TIMEOUT_MS: '60000',
    ORCHESTRATOR_URL: system.orchestratorUrl,
    REGISTRY_TOKEN: registryToken(SECRET, 'slow'),
  });
  const signedUp = await graphql<{ signUp: { accessToken: string; user: { id: string } } }>(
    system.gatewayUrl,
    `mutation($input: SignUpInput!) { signUp(input: $input) { accessToken user { id } } }`,
    { input: { email: EMAIL, password: 'a long password', username: 'slow', firstName: 'S', lastName: 'L' } },
  );
  expect(signedUp.body.errors).toBeUndefined();
  token = signedUp.body.data!.signUp.accessToken;
  userId = signedUp.body.data!.signUp.user.id;
  // The supergraph has the slow subgraph once the gateway validates a query naming it.
  await waitFor(
    async () => {
      const result = await graphql(system.gatewayUrl, '{ __type(name: "Slow") { name } }');
      return (result.body.data as { __type: unknown } | undefined)?.__type;
    },
    60_000,
    'the gateway to serve the slow subgraph',
  );
}, 150_000);

afterAll(async () => {
  slow?.child.kill('SIGKILL');
  await Promise.all([slow?.exited, system?.stop('SIGKILL')]);
});

describe('a subgraph that sleeps past the deadline', { timeout: 60_000 }, () => {
  it("answers in bounded time with the slow subgraph's fields failed and the others resolved", async () => {
    const result = await graphql<{ user: { id: string; email: string }; slow: unknown }>(
      system.gatewayUrl,
      QUERY,
      { id: userId },
      bearer(token),
    );
    // Answered while the slow resolver is still sleeping: bounded by the budget, not by the subgraph.
    const answeredBeforeTheSubgraph = !slow.lines.some((line) => line.includes('slow: done sleeping'));
    expect(result.status).toBe(200);
    expect(result.body.data?.user).toEqual({ id: userId, email: EMAIL });
    expect(result.body.data?.slow ?? null).toBeNull();
    const failure =
      result.body.errors?.find((error) => error.path?.[0] === 'slow') ?? result.body.errors?.[0];
    expect(failure?.extensions).toMatchObject({
      code: 'INTERNAL_SERVER_ERROR',
      reason: 'DEADLINE_EXCEEDED',
      serviceName: 'slow',
    });
    expect(answeredBeforeTheSubgraph).toBe(true);
  });

  it("abandons the subgraph's work once the budget is spent", async () => {
    // The slow resolver ignores the signal and finishes its sleep; nothing after it runs.
    await waitFor(
      () => slow.lines.some((line) => line.includes('slow: done sleeping')),
      SLOW_MS + 5_000,
      'the slow resolver to finish sleeping',
    );
    const metrics = await waitFor(
      async () => {
        const text = await (await fetch(`${slowBase}/metrics`)).text();
        return metricValue(text, 'aiva_deadline_exceeded_total', { stage: 'abandoned' }) > 0
          ? text
          : undefined;
      },
      5_000,
      'the abandoned request to be counted',
    );
    expect(metricValue(metrics, 'aiva_deadline_exceeded_total')).toBeGreaterThan(0);
    expect(slow.lines.some((line) => line.includes('the field after the sleep ran'))).toBe(false);
  });
});
