import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  CompleteRequestSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ErrorCode as McpErrorCode,
  ReadResourceRequestSchema,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { McpCatalog, MutationPolicy } from './catalog.js';
import { introspectType, renderSearchAnswer, searchSchema, validateOperation } from './schema/index.js';

/** A GraphQL request run through the gateway's own `/graphql` path, as the MCP caller. */
export type McpExecutor = (request: {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
}) => Promise<{ status: number; body: GraphQLBody }>;

export interface GraphQLBody {
  data?: unknown;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

export interface McpServerOptions {
  /** The catalog of the supergraph served now (asked for on every request). */
  catalog: () => McpCatalog;
  execute: McpExecutor;
  mutations: MutationPolicy;
  /** Schema discovery (search, introspect, validate, the schema resources): as `/graphql`'s introspection. */
  discovery: boolean;
  /** Results longer than this many characters are cut (execute) or refused with a note (operation tools). */
  maxResultChars: number;
  version: string;
}

const SCHEMA_URI = 'supergraph://schema';
const TYPE_TEMPLATE = 'supergraph://type/{name}';
const TYPE_URI = /^supergraph:\/\/type\/([_A-Za-z][_0-9A-Za-z]*)$/;

const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false };

/** The built-in tools: plain JSON Schemas that strict validators accept. */
function builtInTools(options: McpServerOptions): Tool[] {
  const tools: Tool[] = [];
  if (options.discovery) {
    tools.push(
      {
        name: 'search-schema',
        title: 'Search the schema',
        description:
          'Ranked search over the names and descriptions of the supergraph\'s types, fields and arguments, Query and Mutation included. Answers compact SDL snippets, each with the path from a root field (e.g. "Query.me → User.notifications"). Start here instead of reading the whole schema.',
        inputSchema: {
          type: 'object',
          properties: {
            query: {
              type: 'string',
              minLength: 1,
              maxLength: 200,
              description: 'Words to look for, e.g. "reset password".',
            },
            limit: {
              type: 'integer',
              minimum: 1,
              maximum: 25,
              default: 10,
              description: 'At most this many hits.',
            },
          },
          required: ['query'],
          additionalProperties: false,
        },
        annotations: READ_ONLY,
      },
      {
        name: 'introspect',
        title: 'Describe a type',
        description:
          'One type of the supergraph as compact SDL, with the types its fields use down to `depth` levels (0: the type alone).',
        inputSchema: {
          type: 'object',
          properties: {
            type: {
              type: 'string',
              minLength: 1,
              maxLength: 100,
              description: 'The type name, e.g. "User".',
            },
            depth: { type: 'integer', minimum: 0, maximum: 5, default: 1 },
          },
          required: ['type'],
          additionalProperties: false,
        },
        annotations: READ_ONLY,
      },
      {
        name: 'validate',
        title: 'Validate an operation',
        description:
          'Checks a GraphQL operation against the supergraph; answers its errors with line and column.',
        inputSchema: {
          type: 'object',
          properties: { operation: { type: 'string', minLength: 1, maxLength: 100_000 } },
          required: ['operation'],
          additionalProperties: false,
        },
        annotations: READ_ONLY,
      },
    );
  }
  tools.push({
    name: 'execute',
    title: 'Run an operation',
    description: `Runs a GraphQL operation through the gateway as the caller, with its variables. ${
      options.mutations === 'all'
        ? 'Queries and mutations.'
        : 'Queries only: mutations run through the operation tools' +
          (options.mutations === 'explicit' ? '.' : ', and this server lists none (MCP_MUTATIONS=none).')
    }`,
    inputSchema: {
      type: 'object',
      properties: {
        operation: { type: 'string', minLength: 1, maxLength: 100_000, description: 'The GraphQL document.' },
        variables: { type: 'object', description: 'Its variables.' },
        operationName: { type: 'string', description: 'Which operation of the document to run.' },
      },
      required: ['operation'],
      additionalProperties: false,
    },
    annotations: {
      readOnlyHint: options.mutations !== 'all',
      destructiveHint: options.mutations === 'all',
      openWorldHint: false,
    },
  });
  return tools;
}

const text = (value: string): CallToolResult => ({ content: [{ type: 'text', text: value }] });
const failure = (value: string): CallToolResult => ({
  content: [{ type: 'text', text: value }],
  isError: true,
});

function argumentsOf(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function stringArgument(args: Record<string, unknown>, name: string): string {
  const value = args[name];
  if (typeof value !== 'string' || value.length === 0) {
    throw new McpError(McpErrorCode.InvalidParams, `"${name}" must be a non-empty string`);
  }
  return value;
}

/** The GraphQL errors of an answer, one line each, with their code. */
function errorLines(body: GraphQLBody): string {
  return (body.errors ?? [])
    .map((error) => `${error.message}${error.extensions?.code ? ` (${String(error.extensions.code)})` : ''}`)
    .join('\n');
}

/**
 * An MCP server over the supergraph: the built-in tools, one tool per stored operation, the schema as resources
 * and prompts that help a model explore the graph. Everything it reads comes from `catalog()` at the time of the
 * request, so tools follow the supergraph the gateway serves; calls run as the caller through `execute`.
 */
export function createMcpServer(options: McpServerOptions): Server {
  const server = new Server(
    { name: 'aiva-supergraph', version: options.version },
    {
      capabilities: {
        tools: { listChanged: true },
        ...(options.discovery ? { resources: {}, completions: {} } : {}),
        prompts: {},
      },
      instructions:
        'AIVA\'s supergraph. Find what you need with "search-schema", look closer with "introspect", check an operation with "validate", run it with "execute" or with the tool of a stored operation.',
    },
  );

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    const catalog = options.catalog();
    return {
      tools: [
        ...builtInTools(options),
        ...catalog.operations.map(
          (tool): Tool => ({
            name: tool.name,
            title: tool.title,
            description: tool.description,
            inputSchema: tool.inputSchema as Tool['inputSchema'],
            outputSchema: tool.outputSchema as Tool['outputSchema'],
            annotations: tool.annotations,
          }),
        ),
      ],
    };
  });

  const run = async (
    query: string,
    variables: Record<string, unknown> | undefined,
    operationName: string | undefined,
    structured: boolean,
  ): Promise<CallToolResult> => {
    const { body } = await options.execute({
      query,
      ...(variables ? { variables } : {}),
      ...(operationName ? { operationName } : {}),
    });
    if (body.errors?.length) {
      return {
        content: [{ type: 'text', text: errorLines(body) }],
        isError: true,
        ...(body.data ? { _meta: { partialData: body.data } } : {}),
      };
    }
    const json = JSON.stringify(body.data ?? null);
    if (json.length > options.maxResultChars) {
      const note = `The result is ${json.length} characters, more than the ${options.maxResultChars} this server answers: ask for fewer items (e.g. a smaller "first") or fewer fields.`;
      if (structured) return failure(note);
      return text(`${json.slice(0, options.maxResultChars)}\n… cut here. ${note}`);
    }
    return structured
      ? {
          content: [{ type: 'text', text: json }],
          structuredContent: (body.data ?? {}) as Record<string, unknown>,
        }
      : text(json);
  };

  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const { name } = request.params;
    const args = argumentsOf(request.params.arguments);
    const catalog = options.catalog();
    switch (name) {
      case 'search-schema': {
        if (!options.discovery) break;
        const limit = typeof args.limit === 'number' ? Math.min(25, Math.max(1, Math.floor(args.limit))) : 10;
        return text(
          renderSearchAnswer(searchSchema(catalog.index, stringArgument(args, 'query'), { limit })),
        );
      }
      case 'introspect': {
        if (!options.discovery) break;
        const depth = typeof args.depth === 'number' ? Math.min(5, Math.max(0, Math.floor(args.depth))) : 1;
        const found = introspectType(catalog.schema, stringArgument(args, 'type'), depth);
        return found.found ? text(found.sdl) : failure(found.message);
      }
      case 'validate': {
        if (!options.discovery) break;
        const outcome = validateOperation(catalog.schema, stringArgument(args, 'operation'));
        return outcome.valid
          ? text(`Valid: ${outcome.operations.map((o) => `${o.kind} ${o.name ?? '(anonymous)'}`).join(', ')}`)
          : failure(
              outcome.errors
                .map(
                  (e) =>
                    `${e.message}${e.locations.map((l) => ` (line ${l.line}, column ${l.column})`).join('')}`,
                )
                .join('\n'),
            );
      }
      case 'execute': {
        const operation = stringArgument(args, 'operation');
        const operationName = typeof args.operationName === 'string' ? args.operationName : undefined;
        const outcome = validateOperation(catalog.schema, operation);
        if (!outcome.valid) return failure(outcome.errors.map((e) => e.message).join('\n'));
        const chosen = operationName
          ? outcome.operations.find((o) => o.name === operationName)
          : outcome.operations.length === 1
            ? outcome.operations[0]
            : undefined;
        if (!chosen) return failure('Name the operation to run ("operationName"): the document has several.');
        if (chosen.kind === 'subscription') return failure('Subscriptions cannot run as a tool call.');
        if (chosen.kind === 'mutation' && options.mutations !== 'all') {
          return failure(
            `Mutations do not run through "execute" on this server (MCP_MUTATIONS=${options.mutations})${
              options.mutations === 'explicit' ? ': use the tool of a stored operation' : ''
            }.`,
          );
        }
        const variables = args.variables === undefined ? undefined : argumentsOf(args.variables);
        return run(operation, variables, operationName, false);
      }
      default: {
        const tool = catalog.operations.find((t) => t.name === name);
        if (tool) return run(tool.document, args, tool.operationName, true);
      }
    }
    throw new McpError(McpErrorCode.InvalidParams, `Unknown tool: ${name}`);
  });

  if (options.discovery) {
    server.setRequestHandler(ListResourcesRequestSchema, async () => ({
      resources: [
        {
          uri: SCHEMA_URI,
          name: 'supergraph-schema',
          title: 'The supergraph schema',
          description: 'The API schema of the supergraph, as SDL.',
          mimeType: 'application/graphql',
        },
      ],
    }));
    server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
      resourceTemplates: [
        {
          uriTemplate: TYPE_TEMPLATE,
          name: 'supergraph-type',
          title: 'A type of the supergraph',
          description: 'One type as compact SDL, with the types its fields use.',
          mimeType: 'application/graphql',
        },
      ],
    }));
    server.setRequestHandler(ReadResourceRequestSchema, async (request) => {
      const { uri } = request.params;
      const catalog = options.catalog();
      if (uri === SCHEMA_URI) {
        return { contents: [{ uri, mimeType: 'application/graphql', text: catalog.sdl }] };
      }
      const typeName = TYPE_URI.exec(uri)?.[1];
      const found = typeName ? introspectType(catalog.schema, typeName, 1) : undefined;
      if (!found?.found) {
        throw new McpError(McpErrorCode.InvalidParams, `Unknown resource: ${uri}`, { uri });
      }
      return { contents: [{ uri, mimeType: 'application/graphql', text: found.sdl }] };
    });
    server.setRequestHandler(CompleteRequestSchema, async (request) => {
      const { ref, argument } = request.params;
      if (ref.type !== 'ref/resource' || ref.uri !== TYPE_TEMPLATE || argument.name !== 'name') {
        return { completion: { values: [] } };
      }
      const prefix = argument.value.toLowerCase();
      const names = Object.keys(options.catalog().schema.getTypeMap())
        .filter((n) => !n.startsWith('__') && n.toLowerCase().startsWith(prefix))
        .sort();
      return {
        completion: { values: names.slice(0, 100), total: names.length, hasMore: names.length > 100 },
      };
    });
  }

  server.setRequestHandler(ListPromptsRequestSchema, async () => ({
    prompts: [
      {
        name: 'explore-graph',
        title: 'Explore the supergraph',
        description: 'How to find what the supergraph offers for a goal, without reading the whole schema.',
        arguments: [{ name: 'goal', description: 'What you want to find or do.', required: true }],
      },
      {
        name: 'write-operation',
        title: 'Write a valid operation',
        description: 'Steps to write, check and run a GraphQL operation for a task.',
        arguments: [{ name: 'task', description: 'What the operation should do.', required: true }],
      },
    ],
  }));
  server.setRequestHandler(GetPromptRequestSchema, async (request) => {
    const args = request.params.arguments ?? {};
    switch (request.params.name) {
      case 'explore-graph':
        return {
          messages: [
            {
              role: 'user',
              content: {
                type: 'text',
                text: `Goal: ${args.goal ?? '(none given)'}\n\nExplore AIVA's supergraph for this goal: call "search-schema" with a few words of the goal; follow the "path" of the best hits from a root field; call "introspect" on the types you need (depth 1); list the stored-operation tools that already do it before writing anything new.`,
              },
            },
          ],
        };
      case 'write-operation':
        return {
          messages: [
            {
              role: 'user',
              content: {
                type: 'text',
                text: `Task: ${args.task ?? '(none given)'}\n\nWrite one named GraphQL operation for this task against AIVA's supergraph: find the root field with "search-schema", the fields with "introspect", pass inputs as variables (never inline values), select only what the task needs, check it with "validate" and fix every error, then run it with "execute" (queries) or the matching stored-operation tool (mutations).`,
              },
            },
          ],
        };
      default:
        throw new McpError(McpErrorCode.InvalidParams, `Unknown prompt: ${request.params.name}`);
    }
  });

  return server;
}
