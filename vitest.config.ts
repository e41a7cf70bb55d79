import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources through the "aiva-source" export condition, so tests
// never need a build first. The name is the workspace's own: several npm packages export a plain `source`
// condition pointing at their TypeScript (eventsource-parser, used by the MCP SDK and the AI SDK), which a
// generic name would pull in.
export default defineConfig({
  resolve: { conditions: ['aiva-source'] },
  ssr: { resolve: { conditions: ['aiva-source'], externalConditions: ['aiva-source'] } },
  test: {
    include: [
      '{shared,gateway,orchestrator}/test/**/*.test.ts',
      'subgraphs/*/test/**/*.test.ts',
      'tests/**/*.test.ts',
    ],
    // Timeouts guard against hangs; they are not performance bounds (those are benchmarks). Many tests start
    // processes from source under tsx, which takes seconds each on a loaded CI machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
