import type { GraphQLNamedType, GraphQLSchema } from 'graphql';
import { graphqlJs } from './graphql-js.js';
import { isInternalFieldName, isInternalTypeName } from './sdl.js';

const {
  getNamedType,
  isScalarType,
  isSpecifiedScalarType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
} = graphqlJs;

// The searchable view of a schema, built once per supergraph (the MCP server rebuilds it when the supergraph
// changes) so that a search only scores precomputed tokens. It lists every type, field, argument, input field and
// enum value a client can see, and the shortest path from a root field to every type.

/** What an index entry names. */
export type EntryKind = 'type' | 'field' | 'argument' | 'inputField' | 'enumValue';

/** One searchable element of the schema. */
export interface IndexEntry {
  kind: EntryKind;
  /** The named type it belongs to (the type itself for `type`). */
  typeName: string;
  /** The field, input field or enum value (for `argument`: the field the argument is on). */
  fieldName?: string;
  /** The argument's name, for `argument`. */
  argumentName?: string;
  /** The element's own name. */
  name: string;
  description: string;
  /** Tokens of the name (camelCase / snake_case split, lower case). */
  nameTokens: string[];
  /** Tokens of the description. */
  descriptionTokens: string[];
  /** Tokens of the enclosing names (the type of a field, the field of an argument): weak evidence. */
  contextTokens: string[];
}

/** A schema made searchable: entries, root types, and how each type is reached from a root field. */
export interface SchemaIndex {
  schema: GraphQLSchema;
  entries: IndexEntry[];
  /** The names of the root operation types that exist (`Query`, `Mutation`, `Subscription`). */
  rootTypes: ReadonlySet<string>;
  /**
   * For each reachable type, the shortest chain of steps from a root field to it, e.g. NotificationConnection →
   * [`Query.me`, `User.notifications`]; an input type is reached through an argument (`Mutation.signUp(input)`).
   */
  paths: ReadonlyMap<string, readonly string[]>;
}

/**
 * Indexes every type, field, argument, input field and enum value of a schema, Query and Mutation fields
 * included, leaving out introspection types and Federation internals (`join__*`, `link__*`, `_Any`,
 * `_service`, `_entities`, …).
 */
export function indexSchema(schema: GraphQLSchema): SchemaIndex {
  const entries: IndexEntry[] = [];
  const rootTypes = new Set(
    [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].flatMap((t) =>
      t ? [t.name] : [],
    ),
  );
  for (const type of visibleTypes(schema)) {
    // The spec's scalars (String, Int, …) answer nothing a model searches for.
    if (isScalarType(type) && isSpecifiedScalarType(type)) continue;
    const typeTokens = tokenize(type.name);
    if (!rootTypes.has(type.name)) {
      entries.push(entry('type', type.name, type.name, type.description, [], {}));
    }
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (isInternalFieldName(field.name)) continue;
        entries.push(
          entry('field', type.name, field.name, field.description, typeTokens, { fieldName: field.name }),
        );
        for (const arg of field.args) {
          entries.push(
            entry('argument', type.name, arg.name, arg.description, tokenize(field.name), {
              fieldName: field.name,
              argumentName: arg.name,
            }),
          );
        }
      }
    } else if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) {
        entries.push(
          entry('inputField', type.name, field.name, field.description, typeTokens, {
            fieldName: field.name,
          }),
        );
      }
    } else if (isEnumType(type)) {
      for (const value of type.getValues()) {
        entries.push(
          entry('enumValue', type.name, value.name, value.description, typeTokens, { fieldName: value.name }),
        );
      }
    }
  }
  return { schema, entries, rootTypes, paths: shortestPaths(schema) };
}

/** The types a client can see, in name order: no introspection types, no Federation internals. */
export function visibleTypes(schema: GraphQLSchema): GraphQLNamedType[] {
  return Object.values(schema.getTypeMap())
    .filter((type) => !isInternalTypeName(type.name))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Words of an identifier or a text: `requestPasswordReset` / `request_password_reset` → request, password, reset. */
export function tokenize(text: string): string[] {
  return text
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((token) => token.length > 0);
}

function entry(
  kind: EntryKind,
  typeName: string,
  name: string,
  description: string | null | undefined,
  contextTokens: string[],
  where: { fieldName?: string; argumentName?: string },
): IndexEntry {
  return {
    kind,
    typeName,
    ...where,
    name,
    description: description ?? '',
    nameTokens: tokenize(name),
    descriptionTokens: [...new Set(tokenize(description ?? ''))],
    contextTokens,
  };
}

/**
 * Breadth-first from the root types (Query first) over output fields, then arguments: the first time a type is
 * met is by a shortest chain of fields.
 */
function shortestPaths(schema: GraphQLSchema): Map<string, string[]> {
  const paths = new Map<string, string[]>();
  const queue: GraphQLNamedType[] = [];
  for (const root of [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]) {
    if (root) {
      paths.set(root.name, []);
      queue.push(root);
    }
  }
  const reach = (type: GraphQLNamedType, path: string[]) => {
    if (paths.has(type.name) || isInternalTypeName(type.name)) return;
    paths.set(type.name, path);
    queue.push(type);
  };
  for (let next = queue.shift(); next; next = queue.shift()) {
    const base = paths.get(next.name) ?? [];
    if (isObjectType(next) || isInterfaceType(next)) {
      const fields = Object.values(next.getFields()).filter((f) => !isInternalFieldName(f.name));
      for (const field of fields) reach(getNamedType(field.type), [...base, `${next.name}.${field.name}`]);
      for (const field of fields) {
        for (const arg of field.args) {
          reach(getNamedType(arg.type), [...base, `${next.name}.${field.name}(${arg.name})`]);
        }
      }
    } else if (isInputObjectType(next)) {
      for (const field of Object.values(next.getFields())) {
        reach(getNamedType(field.type), [...base, `${next.name}.${field.name}`]);
      }
    } else if ('getTypes' in next) {
      for (const member of next.getTypes()) reach(member, base);
    }
  }
  return paths;
}
