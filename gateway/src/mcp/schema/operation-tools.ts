import type {
  DocumentNode,
  FieldNode,
  FragmentDefinitionNode,
  GraphQLCompositeType,
  GraphQLOutputType,
  GraphQLSchema,
  OperationDefinitionNode,
  SelectionSetNode,
  ValueNode,
} from 'graphql';
import type { StoredOperation } from '../../operations.js';
import { graphqlJs } from './graphql-js.js';
import {
  inputTypeSchema,
  type JsonSchema,
  leafOutputSchema,
  nullable,
  objectSchema,
  withDescription,
} from './json-schema.js';
import { tokenize } from './schema-index.js';
import { firstSentence } from './sdl.js';
import { validateOperation } from './validate.js';

const {
  getNamedType,
  isAbstractType,
  isCompositeType,
  isInputObjectType,
  isInputType,
  isInterfaceType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  parse,
  TypeInfo,
  typeFromAST,
  valueFromASTUntyped,
  visit,
  visitWithTypeInfo,
} = graphqlJs;

// One MCP tool per stored operation (the `operations/` folders): what the server lists in `tools/list`, and the
// document it runs for a call. Built from the operation checked against the live schema, so a tool's schemas
// always say what the current supergraph accepts and answers.

/** MCP tool annotations (hints a client may show or act on; not guarantees). */
export interface ToolAnnotations {
  readOnlyHint: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
}

/** A tool made of a stored operation. */
export interface OperationTool {
  /** Unique among the tools, `[a-zA-Z0-9_-]`, at most 64 characters: `RequestPasswordReset` → `request-password-reset`. */
  name: string;
  /** Words of the operation name: `Request password reset`. */
  title: string;
  /** The leading comment of the operation's file (or, without one, its root fields' descriptions). */
  description: string;
  /** JSON Schema of the arguments: the operation's variables. */
  inputSchema: JsonSchema;
  /** JSON Schema of the `data` the operation selects (the tool's `structuredContent`). */
  outputSchema: JsonSchema;
  annotations: ToolAnnotations;
  /** What to run: the stored document as it is, its operation name and kind. */
  document: string;
  operationName: string;
  kind: 'query' | 'mutation';
  /** The service whose `operations/` folder holds it (`supergraph` for the root folder), and the file. */
  owner: string;
  file: string;
}

/** The built-in tools of the MCP server, whose names operation tools never take. */
export const BUILT_IN_TOOL_NAMES = ['search-schema', 'introspect', 'validate', 'execute'] as const;

/** The longest tool name MCP clients accept. */
const MAX_TOOL_NAME = 64;

/**
 * The tools of the stored operations against a schema, in the operations' order. An operation the schema does
 * not accept, or a subscription (a tool call answers once), is left out and named in `problems`. Names are the
 * kebab case of the operation names; a name taken (by a built-in tool or an earlier operation) gets the owner
 * appended, then a number.
 */
export function operationTools(
  schema: GraphQLSchema,
  operations: readonly StoredOperation[],
  options: { reservedNames?: readonly string[] } = {},
): { tools: OperationTool[]; problems: string[] } {
  const taken = new Set<string>(options.reservedNames ?? BUILT_IN_TOOL_NAMES);
  const tools: OperationTool[] = [];
  const problems: string[] = [];
  for (const stored of operations) {
    if (stored.kind === 'subscription') {
      problems.push(`${stored.file}: ${stored.name} is a subscription; subscriptions are not tools`);
      continue;
    }
    const checked = validateOperation(schema, stored.document);
    if (!checked.valid) {
      problems.push(`${stored.file}: ${checked.errors.map((e) => e.message).join('; ')}`);
      continue;
    }
    const document = parse(stored.document);
    const operation = document.definitions.find(
      (d): d is OperationDefinitionNode =>
        d.kind === Kind.OPERATION_DEFINITION && d.name?.value === stored.name,
    );
    if (!operation) {
      problems.push(`${stored.file}: no operation named ${stored.name}`);
      continue;
    }
    const name = uniqueName(toolName(stored.name), stored.owner, taken);
    taken.add(name);
    tools.push({
      name,
      title: titleOf(stored.name),
      description: stored.description || rootFieldDescriptions(schema, operation),
      inputSchema: variablesSchema(schema, document, operation),
      outputSchema: dataSchema(schema, document, operation),
      annotations:
        stored.kind === 'query'
          ? { readOnlyHint: true, destructiveHint: false, idempotentHint: true }
          : { readOnlyHint: false, destructiveHint: true, idempotentHint: false },
      document: stored.document,
      operationName: stored.name,
      kind: stored.kind,
      owner: stored.owner,
      file: stored.file,
    });
  }
  return { tools, problems };
}

/** `RequestPasswordReset` → `request-password-reset`, only `[a-z0-9-]`, at most 64 characters. */
export function toolName(operationName: string): string {
  const kebab = tokenize(operationName).join('-') || 'operation';
  return kebab.slice(0, MAX_TOOL_NAME).replace(/-+$/, '');
}

function uniqueName(base: string, owner: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  const withOwner = toolName(`${base}-${owner}`);
  if (!taken.has(withOwner)) return withOwner;
  for (let n = 2; ; n++) {
    const suffix = `-${n}`;
    const candidate = `${withOwner.slice(0, MAX_TOOL_NAME - suffix.length)}${suffix}`;
    if (!taken.has(candidate)) return candidate;
  }
}

function titleOf(operationName: string): string {
  const words = tokenize(operationName).join(' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function rootFieldDescriptions(schema: GraphQLSchema, operation: OperationDefinitionNode): string {
  const root = operation.operation === 'mutation' ? schema.getMutationType() : schema.getQueryType();
  const fields = root?.getFields() ?? {};
  const described = operation.selectionSet.selections.flatMap((selection) =>
    selection.kind === Kind.FIELD ? [firstSentence(fields[selection.name.value]?.description)] : [],
  );
  const text = described.filter(Boolean).join(' ');
  const name = operation.name ? ` ${operation.name.value}` : '';
  return text || `The ${operation.operation}${name} of the supergraph.`;
}

/**
 * The operation's variables as a closed JSON object schema: a non-null variable without a default is required,
 * defaults are kept, each property described by the argument it feeds.
 */
export function variablesSchema(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
): JsonSchema {
  const descriptions = variableDescriptions(schema, document);
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const definition of operation.variableDefinitions ?? []) {
    const name = definition.variable.name.value;
    const type = typeFromAST(schema, definition.type);
    if (!type || !isInputType(type)) continue;
    let property = withDescription(inputTypeSchema(type), descriptions.get(name));
    if (definition.defaultValue) {
      property = { ...property, default: valueFromASTUntyped(definition.defaultValue) };
    }
    properties[name] = property;
    if (isNonNullType(type) && !definition.defaultValue) required.push(name);
  }
  return objectSchema(properties, required);
}

/** For each variable, the description of the (first) argument or input field it is passed to. */
function variableDescriptions(schema: GraphQLSchema, document: DocumentNode): Map<string, string> {
  const found = new Map<string, string>();
  const typeInfo = new TypeInfo(schema);
  const note = (value: ValueNode, description: string | null | undefined) => {
    if (value.kind === Kind.VARIABLE && description && !found.has(value.name.value)) {
      found.set(value.name.value, description);
    }
  };
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Argument(node) {
        note(node.value, typeInfo.getArgument()?.description);
      },
      ObjectField(node) {
        const parent = typeInfo.getParentInputType();
        const named = parent ? getNamedType(parent) : undefined;
        const field = named && isInputObjectType(named) ? named.getFields()[node.name.value] : undefined;
        note(node.value, field?.description);
      },
    }),
  );
  return found;
}

/**
 * The JSON Schema of the `data` an operation answers: an object of the selected fields (by response key),
 * nullable where the schema says, lists as arrays. A field under `@skip`/`@include`, or selected only for some
 * of an abstract type's members, may be absent and is not required.
 */
export function dataSchema(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
): JsonSchema {
  const root = schema.getRootType(operation.operation);
  if (!root) return objectSchema({}, []);
  const fragments = new Map(
    document.definitions
      .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
      .map((d) => [d.name.value, d]),
  );
  return selectionSchema(schema, root, [operation.selectionSet], fragments);
}

interface CollectedField {
  nodes: FieldNode[];
  /** The type the field was selected on: the parent, or a fragment's type condition. */
  scope: GraphQLCompositeType;
  /** Whether the field is in every answer (no condition, and selected on the type itself). */
  always: boolean;
}

function selectionSchema(
  schema: GraphQLSchema,
  parent: GraphQLCompositeType,
  selectionSets: readonly SelectionSetNode[],
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
): JsonSchema {
  const collected = new Map<string, CollectedField>();
  for (const selectionSet of selectionSets) {
    collectFields(schema, parent, selectionSet, fragments, true, collected);
  }
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const [key, { nodes, always, scope }] of collected) {
    const fields = isObjectType(scope) || isInterfaceType(scope) ? scope.getFields() : {};
    const [first] = nodes;
    if (!first) continue;
    const fieldName = first.name.value;
    if (fieldName === '__typename') {
      properties[key] = isObjectType(parent)
        ? { type: 'string', enum: [parent.name] }
        : { type: 'string', enum: schema.getPossibleTypes(parent).map((t) => t.name) };
    } else {
      const field = fields[fieldName];
      if (!field) continue;
      const subSelections = nodes.flatMap((node) => (node.selectionSet ? [node.selectionSet] : []));
      properties[key] = withDescription(
        outputSchema(schema, field.type, subSelections, fragments),
        field.description,
      );
    }
    if (always) required.push(key);
  }
  return objectSchema(properties, required);
}

function outputSchema(
  schema: GraphQLSchema,
  type: GraphQLOutputType,
  selectionSets: readonly SelectionSetNode[],
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  nonNull = false,
): JsonSchema {
  if (isNonNullType(type)) return outputSchema(schema, type.ofType, selectionSets, fragments, true);
  const orNull = nonNull ? (value: JsonSchema) => value : nullable;
  if (isListType(type)) {
    return orNull({ type: 'array', items: outputSchema(schema, type.ofType, selectionSets, fragments) });
  }
  if (isCompositeType(type)) return orNull(selectionSchema(schema, type, selectionSets, fragments));
  return orNull(leafOutputSchema(type));
}

/** Fields by response key, as GraphQL's CollectFields merges them, noting which may be absent. */
function collectFields(
  schema: GraphQLSchema,
  parent: GraphQLCompositeType,
  selectionSet: SelectionSetNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  always: boolean,
  into: Map<string, CollectedField>,
  visited: Set<string> = new Set(),
  scope: GraphQLCompositeType = parent,
): void {
  for (const selection of selectionSet.selections) {
    const unconditional =
      always && !(selection.directives ?? []).some((d) => ['skip', 'include'].includes(d.name.value));
    if (selection.kind === Kind.FIELD) {
      const key = selection.alias?.value ?? selection.name.value;
      const entry = into.get(key) ?? { nodes: [], always: false, scope };
      entry.nodes.push(selection);
      entry.always ||= unconditional;
      into.set(key, entry);
      continue;
    }
    let condition: string | undefined;
    let inner: SelectionSetNode;
    if (selection.kind === Kind.INLINE_FRAGMENT) {
      condition = selection.typeCondition?.name.value;
      inner = selection.selectionSet;
    } else {
      const fragment = fragments.get(selection.name.value);
      if (!fragment || visited.has(fragment.name.value)) continue;
      visited.add(fragment.name.value);
      condition = fragment.typeCondition.name.value;
      inner = fragment.selectionSet;
    }
    const conditionType = condition ? schema.getType(condition) : undefined;
    const innerScope = conditionType && isCompositeType(conditionType) ? conditionType : scope;
    const covered = unconditional && coversParent(schema, parent, condition);
    collectFields(schema, parent, inner, fragments, covered, into, visited, innerScope);
  }
}

/** Whether a fragment's type condition holds for every value of the parent type. */
function coversParent(
  schema: GraphQLSchema,
  parent: GraphQLCompositeType,
  condition: string | undefined,
): boolean {
  if (!condition || condition === parent.name) return true;
  const conditionType = schema.getType(condition);
  return (
    !!conditionType &&
    isAbstractType(conditionType) &&
    isObjectType(parent) &&
    schema.isSubType(conditionType, parent)
  );
}
