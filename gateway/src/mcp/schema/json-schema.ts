import type { GraphQLInputType, GraphQLLeafType, GraphQLScalarType } from 'graphql';
import { graphqlJs } from './graphql-js.js';
import { firstSentence } from './sdl.js';

const {
  astFromValue,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isScalarType,
  valueFromASTUntyped,
} = graphqlJs;

// GraphQL types as plain JSON Schema objects, the kind strict MCP clients accept: no `$schema` dialect line, no
// `$ref`, no `format`, `additionalProperties: false` on every object, and every keyword known to Ajv's strict
// mode. A nullable type is a two-type union with "null" (the one union strict mode allows).

/** A JSON Schema object (only the keywords this module writes). */
export interface JsonSchema {
  type?: JsonType | JsonType[];
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean;
  items?: JsonSchema;
  enum?: Array<string | null>;
  default?: unknown;
  minimum?: number;
  maximum?: number;
}

export type JsonType = 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array' | 'null';

/** GraphQL's Int: a signed 32-bit integer. */
const INT_RANGE = { minimum: -(2 ** 31), maximum: 2 ** 31 - 1 };

/** Scalars that carry any JSON value (`JSON`, `JSONObject`, …). */
const isJsonScalar = (scalar: GraphQLScalarType) => /^json/i.test(scalar.name);

/**
 * The JSON Schema of a variable or argument type: input objects expanded recursively, a type met again inside
 * itself cut to "an object" (so cycles end); lists as arrays; enums as `enum`; custom scalars mapped (JSON → any
 * value, others → a string described by the scalar).
 */
export function inputTypeSchema(type: GraphQLInputType, seen: ReadonlySet<string> = new Set()): JsonSchema {
  if (isNonNullType(type)) return nonNullInputSchema(type.ofType, seen);
  return nullable(nonNullInputSchema(type, seen));
}

function nonNullInputSchema(type: GraphQLInputType, seen: ReadonlySet<string>): JsonSchema {
  if (isListType(type)) return { type: 'array', items: inputTypeSchema(type.ofType, seen) };
  if (isEnumType(type)) {
    return withDescription({ type: 'string', enum: type.getValues().map((v) => v.name) }, type.description);
  }
  if (isInputObjectType(type)) {
    if (seen.has(type.name)) {
      return {
        type: 'object',
        description: `A ${type.name} (the same shape as the enclosing ${type.name}).`,
      };
    }
    const inner = new Set(seen).add(type.name);
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const field of Object.values(type.getFields())) {
      const fieldSchema = withDescription(inputTypeSchema(field.type, inner), field.description);
      const fallback = jsonDefault(field.defaultValue, field.type);
      if (fallback !== undefined) fieldSchema.default = fallback;
      properties[field.name] = fieldSchema;
      if (isNonNullType(field.type) && field.defaultValue === undefined) required.push(field.name);
    }
    return withDescription(objectSchema(properties, required), type.description);
  }
  if (isScalarType(type)) return scalarSchema(type, 'input');
  return {};
}

/** A GraphQL default value as JSON (enum values by name), or undefined when there is none. */
export function jsonDefault(value: unknown, type: GraphQLInputType): unknown {
  if (value === undefined) return undefined;
  const ast = astFromValue(value, type);
  return ast ? valueFromASTUntyped(ast) : undefined;
}

/** The JSON Schema of a (non-null) leaf output value: an enum's values, a scalar's JSON type. */
export function leafOutputSchema(type: GraphQLLeafType): JsonSchema {
  if (isEnumType(type)) return { type: 'string', enum: type.getValues().map((v) => v.name) };
  return scalarSchema(type, 'output');
}

/**
 * The spec's scalars map to their JSON types; a JSON scalar is any value. Another custom scalar is a string as
 * input (described by the scalar); as output it is left open, since its serialised form is the server's choice.
 */
function scalarSchema(scalar: GraphQLScalarType, direction: 'input' | 'output'): JsonSchema {
  switch (scalar.name) {
    case 'ID':
    case 'String':
      return { type: 'string' };
    case 'Int':
      return { type: 'integer', ...INT_RANGE };
    case 'Float':
      return { type: 'number' };
    case 'Boolean':
      return { type: 'boolean' };
  }
  const about = firstSentence(scalar.description);
  if (isJsonScalar(scalar)) return { description: about || 'Any JSON value.' };
  const description = `A ${scalar.name}${about ? `: ${about}` : '.'}`;
  return direction === 'input' ? { type: 'string', description } : { description };
}

/** A closed object: only the listed properties, `required` left out when empty. */
export function objectSchema(properties: Record<string, JsonSchema>, required: string[]): JsonSchema {
  return {
    type: 'object',
    properties,
    ...(required.length > 0 ? { required } : {}),
    additionalProperties: false,
  };
}

/** The schema also accepting `null`: `type` becomes a union with "null", an `enum` gains `null`. */
export function nullable(schema: JsonSchema): JsonSchema {
  if (schema.type === undefined) return schema; // any value, null included
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  if (types.includes('null')) return schema;
  return {
    ...schema,
    type: [...types, 'null'],
    ...(schema.enum ? { enum: [...schema.enum, null] } : {}),
  };
}

/** Adds a description (first sentence) unless there is none or the schema has one. */
export function withDescription(schema: JsonSchema, description: string | null | undefined): JsonSchema {
  const short = firstSentence(description);
  return short && !schema.description ? { ...schema, description: short } : schema;
}
