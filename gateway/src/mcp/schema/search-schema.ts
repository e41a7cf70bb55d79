import { graphqlJs } from './graphql-js.js';
import { type IndexEntry, type SchemaIndex, tokenize } from './schema-index.js';
import { printTypeCompact } from './sdl.js';

const { isInterfaceType, isObjectType } = graphqlJs;

// Ranked search over the index. A model asks in words ("reset password", "unread notifications"), so both the
// question and the schema are split into words; a word found in a name counts three times one found in a
// description, and an exact word counts more than a prefix, a prefix more than a substring. Each answer is the
// smallest useful SDL: the type with only the matching fields, plus how a root field reaches it.

/** One ranked answer. */
export interface SchemaHit {
  /** The type the snippet shows. */
  type: string;
  /** The matching fields (input fields, enum values) shown; empty when the type itself matched. */
  fields: string[];
  score: number;
  /** How a root field reaches it, e.g. `Query.me → User.notifications`; null when nothing reaches it. */
  path: string | null;
  /** Compact SDL: the type with only the matching fields, their arguments and types. */
  sdl: string;
}

export interface SearchOptions {
  /** At most this many hits (10 by default). */
  limit?: number;
}

/** Weight of a word found in a name, in the enclosing name (type of a field), in a description. */
const NAME_WEIGHT = 3;
const CONTEXT_WEIGHT = 0.75;
const DESCRIPTION_WEIGHT = 1;
/** Match strengths: the same word (or its singular), a prefix of a word, inside a word. */
const EXACT = 1;
const PREFIX = 0.6;
const SUBSTRING = 0.3;
/** Within one type, matches scoring under this share of the type's best are left out. */
const KEEP_BESIDE_BEST = 0.4;
/** Words a question is made of that say nothing about the schema. */
const STOPWORDS = new Set(
  'a an and are as at be by can do does for from get gets how i in is it its me my of on or the to what when where which who with'.split(
    ' ',
  ),
);

/**
 * The hits for a question, best first: a type with its matching fields grouped, each Query/Mutation field a hit
 * of its own (ranked by its own match, not by its root type's). Ties go to the shorter, then alphabetical name.
 */
export function searchSchema(index: SchemaIndex, query: string, options: SearchOptions = {}): SchemaHit[] {
  const limit = Math.max(1, options.limit ?? 10);
  const allTerms = tokenize(query);
  const terms = allTerms.filter((term) => !STOPWORDS.has(term));
  if (terms.length === 0) terms.push(...allTerms);
  if (terms.length === 0) return [];
  const compactQuery = query.replace(/[^a-zA-Z0-9]/g, '').toLowerCase();

  const groups = new Map<
    string,
    { typeName: string; matches: Array<{ entry: IndexEntry; score: number }> }
  >();
  for (const entry of index.entries) {
    const score = scoreEntry(entry, terms, compactQuery);
    if (score <= 0) continue;
    const isRootField = index.rootTypes.has(entry.typeName) && entry.fieldName !== undefined;
    const key = isRootField ? `${entry.typeName}.${entry.fieldName}` : entry.typeName;
    const group = groups.get(key) ?? { typeName: entry.typeName, matches: [] };
    group.matches.push({ entry, score });
    groups.set(key, group);
  }

  const ranked = [...groups.values()].map((group) => {
    // A weak match beside a strong one in the same type (a word of a long description) is noise: left out.
    const top = Math.max(...group.matches.map((m) => m.score));
    const matches = group.matches.filter((m) => m.score >= KEEP_BESIDE_BEST * top);
    const scores = matches.map((m) => m.score).sort((a, b) => b - a);
    const [best = 0, ...rest] = scores;
    return { typeName: group.typeName, matches, score: best + 0.25 * rest.reduce((sum, s) => sum + s, 0) };
  });
  ranked.sort((a, b) => b.score - a.score || a.typeName.length - b.typeName.length || compare(a, b));
  return ranked.slice(0, limit).map((group) => toHit(index, group.typeName, group.matches, group.score));
}

/** The hits as one text answer: each snippet under a `# path` comment line. */
export function renderSearchAnswer(hits: readonly SchemaHit[]): string {
  if (hits.length === 0) return 'No type, field or argument matches.';
  return hits
    .map((hit) => `# ${hit.path ? `path: ${hit.path}` : 'not reachable from a root field'}\n${hit.sdl}`)
    .join('\n\n');
}

function compare(a: { typeName: string; matches: Array<{ entry: IndexEntry }> }, b: typeof a): number {
  const nameOf = (g: typeof a) => `${g.typeName}.${g.matches[0]?.entry.fieldName ?? ''}`;
  return nameOf(a).localeCompare(nameOf(b));
}

/** How well one element matches: per question word its best evidence, plus a bonus for the whole name. */
function scoreEntry(entry: IndexEntry, terms: string[], compactQuery: string): number {
  let total = 0;
  let matched = 0;
  for (const term of terms) {
    const best = Math.max(
      NAME_WEIGHT * matchStrength(term, entry.nameTokens),
      CONTEXT_WEIGHT * matchStrength(term, entry.contextTokens),
      DESCRIPTION_WEIGHT * matchStrength(term, entry.descriptionTokens),
    );
    if (best > 0) matched += 1;
    total += best;
  }
  if (matched === 0) return 0;
  if (compactQuery === entry.name.toLowerCase()) total += 10;
  // Elements that answer every word of the question come before those that answer some.
  return total * (matched / terms.length);
}

function matchStrength(term: string, tokens: readonly string[]): number {
  let best = 0;
  const stem = singular(term);
  for (const token of tokens) {
    if (token === term || singular(token) === stem) return EXACT;
    if (term.length >= 2 && token.startsWith(term)) best = Math.max(best, PREFIX);
    else if (term.length >= 3 && token.includes(term)) best = Math.max(best, SUBSTRING);
  }
  return best;
}

/** A crude singular, enough to match `notifications` with `notification` and `queries` with `query`. */
function singular(word: string): string {
  if (word.length > 4 && word.endsWith('ies')) return `${word.slice(0, -3)}y`;
  if (word.length > 3 && word.endsWith('s') && !word.endsWith('ss')) return word.slice(0, -1);
  return word;
}

function toHit(
  index: SchemaIndex,
  typeName: string,
  matches: Array<{ entry: IndexEntry; score: number }>,
  score: number,
): SchemaHit {
  const type = index.schema.getType(typeName);
  const typeMatched = matches.some((m) => m.entry.kind === 'type');
  const fields = [...new Set(matches.flatMap((m) => (m.entry.fieldName ? [m.entry.fieldName] : [])))];
  // A matching type shows whole; otherwise only the matching fields.
  const shown = typeMatched ? [] : fields;
  const sdl = type ? printTypeCompact(type, shown.length > 0 ? { only: new Set(shown) } : {}) : '';
  const base = index.paths.get(typeName);
  let path: string | null = null;
  if (base) {
    const steps =
      shown.length === 1 && (isObjectType(type) || isInterfaceType(type))
        ? [...base, `${typeName}.${shown[0]}`]
        : base;
    path = steps.length > 0 ? steps.join(' → ') : null;
  }
  return { type: typeName, fields: shown, score: Math.round(score * 100) / 100, path, sdl };
}
