import { createRequire } from 'node:module';

/**
 * graphql-js as @apollo/federation-internals and @apollo/gateway load it: the CommonJS build. Under Node the ESM
 * `import 'graphql'` resolves to that same build, but resolvers that prefer the `module` field (vite, hence
 * vitest) load its ESM build, a second copy whose classes fail graphql-js's realm checks against the schemas
 * federation builds ("Cannot use GraphQLObjectType … from another module or realm"). Everything in this folder
 * that inspects, builds or validates schemas uses this one copy, so it accepts the gateway's own schema
 * objects wherever it runs. (The orchestrator does the same in `orchestrator/src/schema/graphql-js.ts`.)
 */
export const graphqlJs: typeof import('graphql') = createRequire(import.meta.url)('graphql');
