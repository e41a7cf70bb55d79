import { createRequire } from 'node:module';

/**
 * graphql-js as @apollo/federation-internals and @graphql-inspector/core load it: the CommonJS build.
 * Resolvers that prefer the `module` field (vite, hence vitest) load `import 'graphql'` from its ESM build, a
 * second copy whose classes fail graphql-js's realm checks against the API schemas federation builds
 * ("Cannot use GraphQLObjectType … from another module or realm"). Everything here that builds, prints or
 * validates against a schema uses this one copy.
 */
export const graphqlJs: typeof import('graphql') = createRequire(import.meta.url)('graphql');
