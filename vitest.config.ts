import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources through the "source" export condition,
// so tests never need a build first.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'], externalConditions: ['source'] } },
  test: {
    include: [
      '{shared,gateway,orchestrator}/test/**/*.test.ts',
      'subgraphs/*/test/**/*.test.ts',
      'tests/**/*.test.ts',
    ],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Packages that also export a `source` condition (their TypeScript) are compiled by vite rather than loaded
    // by Node, which the workspace's `source` condition would otherwise send to a .ts file.
    server: { deps: { inline: [/@modelcontextprotocol\/sdk/, 'eventsource-parser', 'eventsource'] } },
    reporters: ['default'],
  },
});
