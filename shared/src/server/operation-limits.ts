import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import {
  type GraphQLError,
  type GraphQLFormattedError,
  Kind,
  OperationTypeNode,
  type ParseOptions,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { type CommonEnv, commonEnvSchema, loadConfig } from '../config.js';
import { AivaError } from '../errors.js';

/**
 * What one GraphQL operation may ask of a server. Every AIVA GraphQL server (the gateway and each subgraph, which
 * can be reached directly) refuses an operation over a limit before any resolver runs: HTTP 400,
 * `extensions.code: BAD_USER_INPUT`, `extensions.reason` naming the limit (`MAX_DEPTH`, ...), `extensions.limit`.
 * 0 turns a limit off.
 *
 * The defaults (`GRAPHQL_MAX_*` in `commonEnvSchema`) are far above what a client of this API sends, and above
 * what the gateway's query planner sends a subgraph for an operation the gateway accepted: an entity fetch puts
 * `_entities` where the client had a deeper path (fragments do not count as a level, so `... on User` adds
 * none), carries the client's aliases and root fields of that subgraph only, and passes the representations as
 * a variable (no tokens, no cost).
 */
export interface OperationLimits {
  /** Deepest field nesting (`{ a { b } }` is 2); fragments are not a level. */
  depth: number;
  /** Aliased fields, fragments included (aliased `__typename` is free). */
  aliases: number;
  /** Distinct root fields (response names) of a query or subscription. */
  rootFields: number;
  /** Distinct root fields of a mutation (each one a separate write). */
  mutationRootFields: number;
  /** Directives, fragments included. */
  directives: number;
  /** Lexical tokens of the document: the parser stops at the limit, before the document is parsed in full. */
  tokens: number;
  /** graphql-armor's cost estimate: objects 2, scalars 1, ×1.5 per level, × a literal `first`/`last`. */
  cost: number;
  /** Bytes of a query an automatic persisted query may register. */
  persistedQueryBytes: number;
}

/** `extensions.reason` of a refusal, one per limit. */
export type OperationLimitReason =
  | 'MAX_DEPTH'
  | 'MAX_ALIASES'
  | 'MAX_ROOT_FIELDS'
  | 'MAX_DIRECTIVES'
  | 'MAX_TOKENS'
  | 'MAX_COST'
  | 'MAX_PERSISTED_QUERY_BYTES';

/** The variables of `commonEnvSchema` the server kit reads for its GraphQL edge. */
const edgeEnvSchema = commonEnvSchema.pick({
  NODE_ENV: true,
  GRAPHQL_MAX_DEPTH: true,
  GRAPHQL_MAX_ALIASES: true,
  GRAPHQL_MAX_ROOT_FIELDS: true,
  GRAPHQL_MAX_MUTATIONS: true,
  GRAPHQL_MAX_DIRECTIVES: true,
  GRAPHQL_MAX_TOKENS: true,
  GRAPHQL_MAX_COST: true,
  APQ_MAX_QUERY_BYTES: true,
  GRAPHQL_INTROSPECTION: true,
});
export type GraphQLEdgeEnv = Pick<
  CommonEnv,
  | 'NODE_ENV'
  | 'GRAPHQL_MAX_DEPTH'
  | 'GRAPHQL_MAX_ALIASES'
  | 'GRAPHQL_MAX_ROOT_FIELDS'
  | 'GRAPHQL_MAX_MUTATIONS'
  | 'GRAPHQL_MAX_DIRECTIVES'
  | 'GRAPHQL_MAX_TOKENS'
  | 'GRAPHQL_MAX_COST'
  | 'APQ_MAX_QUERY_BYTES'
  | 'GRAPHQL_INTROSPECTION'
>;

/** The operation limits of a service's configuration. */
export function operationLimitsOf(config: GraphQLEdgeEnv): OperationLimits {
  return {
    depth: config.GRAPHQL_MAX_DEPTH,
    aliases: config.GRAPHQL_MAX_ALIASES,
    rootFields: config.GRAPHQL_MAX_ROOT_FIELDS,
    mutationRootFields: config.GRAPHQL_MAX_MUTATIONS,
    directives: config.GRAPHQL_MAX_DIRECTIVES,
    tokens: config.GRAPHQL_MAX_TOKENS,
    cost: config.GRAPHQL_MAX_COST,
    persistedQueryBytes: config.APQ_MAX_QUERY_BYTES,
  };
}

/** Introspection (and "did you mean" suggestions): GRAPHQL_INTROSPECTION when set, else on in development only. */
export function introspectionOf(config: Pick<CommonEnv, 'NODE_ENV' | 'GRAPHQL_INTROSPECTION'>): boolean {
  return config.GRAPHQL_INTROSPECTION ?? config.NODE_ENV === 'development';
}

/** The limits when no variable is set. */
export const DEFAULT_OPERATION_LIMITS: Readonly<OperationLimits> = Object.freeze(
  operationLimitsOf(edgeEnvSchema.parse({})),
);

/**
 * The edge settings of the process environment, for servers whose options do not carry them (a process's
 * configuration was already checked against `commonEnvSchema` at start, so this does not fail there).
 */
export function graphqlEdgeFromEnv(env: Record<string, string | undefined> = process.env): {
  limits: OperationLimits;
  introspection: boolean;
} {
  const config = loadConfig(edgeEnvSchema, env);
  return { limits: operationLimitsOf(config), introspection: introspectionOf(config) };
}

/** The refusal of an operation over a limit: BAD_USER_INPUT, HTTP 400, the limit as `reason` and `limit`. */
export function operationLimitExceeded(
  reason: OperationLimitReason,
  message: string,
  details: { limit: number; found?: number | undefined },
): AivaError {
  return new AivaError('BAD_USER_INPUT', message, {
    reason,
    limit: details.limit,
    ...(details.found === undefined ? {} : { found: details.found }),
    http: { status: 400 },
  });
}

/** The count graphql-armor puts in its messages ("... exceeded, found 31."). */
function foundIn(error: GraphQLError): number | undefined {
  const match = /found (\d+(?:\.\d+)?)/.exec(error.message);
  return match ? Math.ceil(Number(match[1])) : undefined;
}

/** graphql-armor's callback on a refusal: reports our error (the rule itself does not throw). */
function reject(reason: OperationLimitReason, limit: number, describe: (found: string) => string) {
  return {
    enabled: limit > 0,
    n: limit,
    exposeLimits: true,
    propagateOnRejection: false,
    onReject: [
      (context: ValidationContext | null, error: GraphQLError) => {
        const found = foundIn(error);
        context?.reportError(
          operationLimitExceeded(reason, describe(found === undefined ? 'The operation' : String(found)), {
            limit,
            found,
          }),
        );
      },
    ],
  };
}

/** The response names a selection set resolves at its level (inline fragments and named fragments flattened). */
function responseNames(
  context: ValidationContext,
  selectionSet: SelectionSetNode,
  names: Set<string>,
  visitedFragments: Set<string>,
): void {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      // `__typename` costs nothing (no resolver); aliased, it is still a response name.
      if (selection.alias || selection.name.value !== '__typename') {
        names.add(selection.alias?.value ?? selection.name.value);
      }
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      responseNames(context, selection.selectionSet, names, visitedFragments);
    } else if (!visitedFragments.has(selection.name.value)) {
      visitedFragments.add(selection.name.value);
      const fragment = context.getFragment(selection.name.value);
      if (fragment) responseNames(context, fragment.selectionSet, names, visitedFragments);
    }
  }
}

/**
 * Root fields per operation: each root field of a mutation is a write of its own (200 aliased
 * `requestPasswordReset` in one request are 200 resets), each root field of a query a separate resolution.
 * Fields with the same response name are resolved once, so they count once.
 */
export function maxRootFieldsRule(limits: Pick<OperationLimits, 'rootFields' | 'mutationRootFields'>) {
  const rule: ValidationRule = (context) => ({
    OperationDefinition(operation) {
      const mutation = operation.operation === OperationTypeNode.MUTATION;
      const limit = mutation ? limits.mutationRootFields : limits.rootFields;
      if (limit <= 0) return;
      const names = new Set<string>();
      responseNames(context, operation.selectionSet, names, new Set());
      if (names.size > limit) {
        context.reportError(
          operationLimitExceeded(
            'MAX_ROOT_FIELDS',
            `${names.size} root fields in one ${operation.operation} exceed the limit of ${limit}`,
            { limit, found: names.size },
          ),
        );
      }
    },
  });
  return rule;
}

/**
 * The validation rules of the limits: depth, aliases, directives and cost from graphql-armor (its rules, with
 * its callbacks reporting our error), root fields from `maxRootFieldsRule`.
 */
export function operationLimitRules(limits: OperationLimits): ValidationRule[] {
  const armor = new ApolloArmor({
    // Suggestions are stripped by the server's error formatter (validation and variable errors alike); tokens
    // are counted by graphql's own parser (`operationParseOptions`), which stops at the limit.
    blockFieldSuggestion: { enabled: false },
    maxTokens: { enabled: false },
    maxDepth: {
      ...reject('MAX_DEPTH', limits.depth, (found) => `Depth ${found} exceeds the limit of ${limits.depth}`),
      flattenFragments: true,
    },
    maxAliases: reject(
      'MAX_ALIASES',
      limits.aliases,
      (found) => `${found} aliases exceed the limit of ${limits.aliases} per operation`,
    ),
    maxDirectives: reject(
      'MAX_DIRECTIVES',
      limits.directives,
      (found) => `${found} directives exceed the limit of ${limits.directives} per operation`,
    ),
    costLimit: {
      ...reject('MAX_COST', limits.cost, (found) => `Cost ${found} exceeds the limit of ${limits.cost}`),
      maxCost: limits.cost,
      flattenFragments: true,
    },
  });
  const rootFields =
    limits.rootFields > 0 || limits.mutationRootFields > 0 ? [maxRootFieldsRule(limits)] : [];
  return [...armor.protect().validationRules, ...rootFields];
}

/** graphql's parser options for the token limit: parsing stops at the first token over it. */
export function operationParseOptions(limits: Pick<OperationLimits, 'tokens'>): ParseOptions {
  return limits.tokens > 0 ? { maxTokens: limits.tokens } : {};
}

// graphql 16.15 words it "more that"; later versions may fix the typo.
const TOKEN_LIMIT_MESSAGE = /^Syntax Error: Document contains more th(?:an|at) (\d+) tokens/;

/** The parser's token-limit error, as a refusal like the others (graphql words it as a syntax error). */
export function tokenLimitError(formatted: GraphQLFormattedError): GraphQLFormattedError {
  if (formatted.extensions?.code !== 'GRAPHQL_PARSE_FAILED') return formatted;
  const match = TOKEN_LIMIT_MESSAGE.exec(formatted.message);
  if (!match) return formatted;
  const limit = Number(match[1]);
  return {
    message: `The document exceeds the limit of ${limit} tokens`,
    extensions: { code: 'BAD_USER_INPUT', reason: 'MAX_TOKENS' satisfies OperationLimitReason, limit },
  };
}

const SUGGESTION = /\s*Did you mean [^?]*\?/g;

/** An error without graphql's "Did you mean ...?" hints, which spell out the schema to a caller who guesses. */
export function withoutSuggestions(formatted: GraphQLFormattedError): GraphQLFormattedError {
  if (!formatted.message.includes('Did you mean')) return formatted;
  return { ...formatted, message: formatted.message.replace(SUGGESTION, '') };
}

/**
 * Refuses to register an automatic persisted query whose text is over `maxBytes` (the cache holds what clients
 * register); the operation is not run either.
 */
export function persistedQuerySizeLimit<TContext extends BaseContext>(
  maxBytes: number,
): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      if (maxBytes <= 0) return;
      return {
        async didResolveOperation(request) {
          if (!request.metrics.persistedQueryRegister) return;
          const bytes = Buffer.byteLength(request.source ?? '');
          if (bytes <= maxBytes) return;
          throw operationLimitExceeded(
            'MAX_PERSISTED_QUERY_BYTES',
            `A persisted query may have ${maxBytes} bytes at most; this one has ${bytes}`,
            { limit: maxBytes, found: bytes },
          );
        },
      };
    },
  };
}
