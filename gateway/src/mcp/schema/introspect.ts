import type { GraphQLNamedType, GraphQLSchema } from 'graphql';
import { visibleTypes } from './schema-index.js';
import { isInternalTypeName, isPrintable, printTypeCompact, referencedTypes } from './sdl.js';

/** The deepest `introspectType` goes: past it a graph this size is the whole schema anyway. */
export const MAX_INTROSPECTION_DEPTH = 5;

/** A type found: its compact SDL and the types printed, in order. */
export interface IntrospectionFound {
  found: true;
  /** The name the type has (a name given in another case resolves to it). */
  name: string;
  sdl: string;
  /** The types the SDL holds, the asked one first. */
  types: string[];
}

/** No such type: a message naming the closest names. */
export interface IntrospectionMissing {
  found: false;
  message: string;
  suggestions: string[];
}

/**
 * Compact SDL of one type and, to `depth` levels, of the types it refers to: 0 is the type alone, 1 (the default)
 * adds the types its fields, arguments, input fields and members name, 2 the types those name, and so on up to
 * {@link MAX_INTROSPECTION_DEPTH}. Each type is printed once (an enum, input or scalar named by many fields too);
 * the spec's scalars are not printed; descriptions are cut to their first sentence. Never throws: an unknown name
 * answers the closest names.
 */
export function introspectType(
  schema: GraphQLSchema,
  name: string,
  depth = 1,
): IntrospectionFound | IntrospectionMissing {
  const type = lookUp(schema, name.trim());
  if (!type) {
    const suggestions = closeNames(
      name.trim(),
      visibleTypes(schema).map((t) => t.name),
    );
    const hint = suggestions.length > 0 ? ` Did you mean ${suggestions.join(', ')}?` : '';
    return { found: false, message: `There is no type "${name}" in the schema.${hint}`, suggestions };
  }
  const levels = Math.min(Math.max(0, Math.floor(depth) || 0), MAX_INTROSPECTION_DEPTH);
  const printed: GraphQLNamedType[] = [type];
  const seen = new Set([type.name]);
  let frontier = [type];
  for (let level = 1; level <= levels && frontier.length > 0; level++) {
    const next: GraphQLNamedType[] = [];
    for (const current of frontier) {
      for (const referenced of referencedTypes(current, schema)) {
        if (seen.has(referenced.name) || !isPrintable(referenced)) continue;
        seen.add(referenced.name);
        next.push(referenced);
      }
    }
    printed.push(...next);
    frontier = next;
  }
  return {
    found: true,
    name: type.name,
    sdl: printed.map((t) => printTypeCompact(t)).join('\n\n'),
    types: printed.map((t) => t.name),
  };
}

/** The type of that name, or the only one of that name in another case; never an internal one. */
function lookUp(schema: GraphQLSchema, name: string): GraphQLNamedType | undefined {
  if (isInternalTypeName(name)) return undefined;
  const exact = schema.getType(name);
  if (exact) return exact;
  const folded = visibleTypes(schema).filter((t) => t.name.toLowerCase() === name.toLowerCase());
  return folded.length === 1 ? folded[0] : undefined;
}

/** Up to five names close to `name`: containing it (or contained in it) first, then by edit distance. */
export function closeNames(name: string, candidates: readonly string[]): string[] {
  const wanted = name.toLowerCase();
  if (!wanted) return [];
  const scored = candidates.flatMap((candidate) => {
    const lower = candidate.toLowerCase();
    const distance = editDistance(wanted, lower);
    const contains = wanted.length >= 3 && (lower.includes(wanted) || wanted.includes(lower));
    if (!contains && distance > Math.max(2, Math.floor(wanted.length / 3))) return [];
    return [{ candidate, rank: contains ? 0 : distance }];
  });
  scored.sort((a, b) => a.rank - b.rank || a.candidate.localeCompare(b.candidate));
  return scored.slice(0, 5).map((s) => s.candidate);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
