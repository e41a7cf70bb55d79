import type {
  GraphQLArgument,
  GraphQLEnumValue,
  GraphQLField,
  GraphQLInputField,
  GraphQLNamedType,
  GraphQLSchema,
} from 'graphql';
import { graphqlJs } from './graphql-js.js';

const {
  astFromValue,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isScalarType,
  isSpecifiedScalarType,
  isUnionType,
  print,
} = graphqlJs;

// Compact SDL for answers a model reads: descriptions cut to their first sentence and printed as one-line
// strings, arguments inline, no directives but `@deprecated`. Every snippet is still valid SDL, so a model can
// quote it back and a parser accepts it.

/** The longest description kept, in characters (a first sentence longer than that is cut with `…`). */
const MAX_DESCRIPTION = 160;

/** Names the GraphQL spec or Federation own: introspection (`__*`), join/link machinery and entity plumbing. */
export function isInternalTypeName(name: string): boolean {
  return (
    name.startsWith('__') ||
    name.startsWith('join__') ||
    name.startsWith('link__') ||
    name.startsWith('federation__') ||
    name.startsWith('connect__') ||
    ['_Any', '_Entity', '_Service', '_FieldSet', 'FieldSet'].includes(name)
  );
}

/** Root fields Federation adds to a subgraph schema (never served to clients by the gateway). */
export function isInternalFieldName(name: string): boolean {
  return name === '_service' || name === '_entities' || name.startsWith('__');
}

/** The first sentence of a description, whitespace collapsed, at most {@link MAX_DESCRIPTION} characters. */
export function firstSentence(description: string | null | undefined): string {
  if (!description) return '';
  const text = description.replace(/\s+/g, ' ').trim();
  // A sentence ends at a stop followed by a capital (or the end): `e.g. a link` goes on.
  const end = text.search(/[.!?](?=\s+[A-Z`"(]|$)/);
  const sentence = end >= 0 ? text.slice(0, end + 1) : text;
  return sentence.length > MAX_DESCRIPTION
    ? `${sentence.slice(0, MAX_DESCRIPTION - 1).trimEnd()}…`
    : sentence;
}

/** What to print of a type: which fields (or enum values), and whether descriptions come along. */
export interface PrintOptions {
  /** Only these fields / input fields / enum values; all when absent. */
  only?: ReadonlySet<string>;
  /** Keep (first-sentence) descriptions; true by default. */
  descriptions?: boolean;
}

/** Compact SDL of one named type. */
export function printTypeCompact(type: GraphQLNamedType, options: PrintOptions = {}): string {
  const withDescriptions = options.descriptions ?? true;
  const head = withDescriptions ? descriptionLine(type.description, '') : '';
  const keep = (name: string) => !options.only || options.only.has(name);
  if (isObjectType(type) || isInterfaceType(type)) {
    const keyword = isObjectType(type) ? 'type' : 'interface';
    const interfaces = type.getInterfaces().map((i) => i.name);
    const implementsClause = interfaces.length > 0 ? ` implements ${interfaces.join(' & ')}` : '';
    const fields = Object.values(type.getFields()).filter(
      (f) => keep(f.name) && !isInternalFieldName(f.name),
    );
    const body = fields.map((field) => printField(field, withDescriptions)).join('\n');
    return `${head}${keyword} ${type.name}${implementsClause} {\n${body}\n}`;
  }
  if (isInputObjectType(type)) {
    const fields = Object.values(type.getFields()).filter((f) => keep(f.name));
    const body = fields.map((field) => printInputValue(field, withDescriptions, '  ')).join('\n');
    return `${head}input ${type.name} {\n${body}\n}`;
  }
  if (isEnumType(type)) {
    const values = type.getValues().filter((v) => keep(v.name));
    const body = values.map((value) => printEnumValue(value, withDescriptions)).join('\n');
    return `${head}enum ${type.name} {\n${body}\n}`;
  }
  if (isUnionType(type)) {
    return `${head}union ${type.name} = ${type
      .getTypes()
      .map((t) => t.name)
      .join(' | ')}`;
  }
  return `${head}scalar ${type.name}`;
}

/** Whether a type is worth printing on its own (the spec's scalars are known to every reader). */
export function isPrintable(type: GraphQLNamedType): boolean {
  return !(isScalarType(type) && isSpecifiedScalarType(type)) && !isInternalTypeName(type.name);
}

/** One field with its arguments inline: `notifications(first: Int = 20, after: String): NotificationConnection!`. */
export function printField(field: GraphQLField<unknown, unknown>, withDescriptions = true): string {
  const args = field.args.map((arg) => printArgument(arg)).join(', ');
  const signature = `${field.name}${args ? `(${args})` : ''}: ${field.type.toString()}`;
  return `${withDescriptions ? descriptionLine(field.description, '  ') : ''}  ${signature}${deprecation(field)}`;
}

/** `name: Type = default`, as an argument or input field is declared. */
export function printArgument(arg: GraphQLArgument | GraphQLInputField): string {
  return `${arg.name}: ${arg.type.toString()}${defaultClause(arg)}${deprecation(arg)}`;
}

/** The named types a type refers to: field and argument types, input fields, union members, interfaces. */
export function referencedTypes(type: GraphQLNamedType, schema: GraphQLSchema): GraphQLNamedType[] {
  const names: string[] = [];
  if (isObjectType(type) || isInterfaceType(type)) {
    names.push(...type.getInterfaces().map((i) => i.name));
    for (const field of Object.values(type.getFields())) {
      if (isInternalFieldName(field.name)) continue;
      names.push(getNamedType(field.type).name);
      names.push(...field.args.map((arg) => getNamedType(arg.type).name));
    }
  } else if (isInputObjectType(type)) {
    names.push(...Object.values(type.getFields()).map((f) => getNamedType(f.type).name));
  } else if (isUnionType(type)) {
    names.push(...type.getTypes().map((t) => t.name));
  }
  return [...new Set(names)].flatMap((name) => {
    const found = schema.getType(name);
    return found ? [found] : [];
  });
}

function printInputValue(value: GraphQLInputField, withDescriptions: boolean, indent: string): string {
  return `${withDescriptions ? descriptionLine(value.description, indent) : ''}${indent}${printArgument(value)}`;
}

function printEnumValue(value: GraphQLEnumValue, withDescriptions: boolean): string {
  const reason = value.deprecationReason;
  const deprecated = reason != null ? ` @deprecated(reason: ${JSON.stringify(reason)})` : '';
  return `${withDescriptions ? descriptionLine(value.description, '  ') : ''}  ${value.name}${deprecated}`;
}

function descriptionLine(description: string | null | undefined, indent: string): string {
  const short = firstSentence(description);
  return short ? `${indent}${JSON.stringify(short)}\n` : '';
}

function defaultClause(arg: GraphQLArgument | GraphQLInputField): string {
  if (arg.defaultValue === undefined) return '';
  const ast = astFromValue(arg.defaultValue, arg.type);
  return ast ? ` = ${print(ast)}` : '';
}

function deprecation(element: { deprecationReason?: string | null | undefined }): string {
  const reason = element.deprecationReason;
  return reason != null ? ` @deprecated(reason: ${JSON.stringify(firstSentence(reason))})` : '';
}
