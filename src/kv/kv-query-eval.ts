import { compareCodePoints } from '../strings.js';
import {
  isPlainObject,
  type KvCompareOperator,
  type KvFieldRef,
  type KvMemberSelection,
  type KvPredicate,
  type KvQueryPlan,
  type KvRecordView,
  type KvScalar,
  type KvSortKey,
  type KvSortPosition,
} from './kv-query.js';

// The plain evaluator of the query DSL (its semantics: kv-query.ts).

const MISSING: unique symbol = Symbol('missing');
type Resolved = unknown | typeof MISSING;

function resolveJson(document: unknown, path: string[]): Resolved {
  let current = document;
  for (const segment of path) {
    if (!isPlainObject(current) || !Object.hasOwn(current, segment)) return MISSING;
    current = current[segment];
  }
  return current === undefined ? MISSING : current;
}

/**
 * The selected members of a JSON document, in the document's own order, or
 * `MISSING` when none is there. Like conditions, paths walk objects only.
 */
function pickMembers(document: unknown, selection: KvMemberSelection): Resolved {
  if (!isPlainObject(document)) return MISSING;
  const picked: Record<string, unknown> = {};
  let found = false;
  for (const [name, member] of Object.entries(document)) {
    const branch = selection.get(name);
    if (branch === undefined) continue;
    const kept = branch === true ? member : pickMembers(member, branch);
    if (kept === MISSING) continue;
    // A member named `__proto__` is data (JSON.parse makes it an own property), never a prototype.
    Object.defineProperty(picked, name, {
      value: kept,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    found = true;
  }
  return found ? picked : MISSING;
}

/** The selected members of a document, or `undefined` when none of them is there. */
export function selectMembers(document: unknown, selection: KvMemberSelection): unknown {
  const picked = pickMembers(document, selection);
  return picked === MISSING ? undefined : picked;
}

function resolve(view: KvRecordView, field: KvFieldRef): Resolved {
  if (field.kind === 'column') return view[field.column];
  return resolveJson(field.document === 'value' ? view.value : view.metadata, field.path);
}

function sameScalar(a: unknown, b: KvScalar): boolean {
  return typeof a === typeof b && a === b;
}

function ordered(actual: unknown, operand: KvScalar): number | undefined {
  if (typeof actual === 'number' && typeof operand === 'number') return actual - operand;
  if (typeof actual === 'string' && typeof operand === 'string') return compareCodePoints(actual, operand);
  return undefined;
}

function compare(actual: Resolved, operator: KvCompareOperator, operand: KvScalar): boolean {
  if (actual === MISSING) return false;
  switch (operator) {
    case 'eq':
      return sameScalar(actual, operand);
    case 'neq':
      return !sameScalar(actual, operand);
    case 'contains':
      if (Array.isArray(actual)) return actual.some((item) => sameScalar(item, operand));
      return typeof actual === 'string' && typeof operand === 'string' && actual.includes(operand);
    case 'startsWith':
      return typeof actual === 'string' && actual.startsWith(operand as string);
    case 'endsWith':
      return typeof actual === 'string' && actual.endsWith(operand as string);
  }
  const difference = ordered(actual, operand);
  if (difference === undefined) return false;
  switch (operator) {
    case 'gt':
      return difference > 0;
    case 'gte':
      return difference >= 0;
    case 'lt':
      return difference < 0;
    default:
      return difference <= 0;
  }
}

/** Whether a record satisfies a predicate: the reference semantics every backend must reproduce. */
export function matchesPredicate(view: KvRecordView, predicate: KvPredicate): boolean {
  switch (predicate.kind) {
    case 'and':
      return predicate.items.every((item) => matchesPredicate(view, item));
    case 'or':
      return predicate.items.some((item) => matchesPredicate(view, item));
    case 'exists':
      return (resolve(view, predicate.field) !== MISSING) === predicate.exists;
    case 'in': {
      const actual = resolve(view, predicate.field);
      if (actual === MISSING) return false;
      return predicate.operands.some((operand) => sameScalar(actual, operand)) !== predicate.negated;
    }
    case 'compare':
      return compare(resolve(view, predicate.field), predicate.operator, predicate.operand);
  }
}

/**
 * Type ranks of the sort order: missing 0, null 1, false 2, true 3, number 4,
 * string 5, array 6, object 7.
 */
export function jsonTypeRank(value: Resolved): number {
  if (value === MISSING) return 0;
  if (value === null) return 1;
  if (value === false) return 2;
  if (value === true) return 3;
  if (typeof value === 'number') return 4;
  if (typeof value === 'string') return 5;
  return Array.isArray(value) ? 6 : 7;
}

/** The position of a record in a query's order (see `KvSortPosition`). */
export function sortPosition(view: KvRecordView, orderBy: KvSortKey[]): KvSortPosition {
  const vector: Array<number | string> = [];
  for (const { field } of orderBy) {
    const value = resolve(view, field);
    if (field.kind === 'column') {
      vector.push(value as number | string);
      continue;
    }
    const rank = jsonTypeRank(value);
    vector.push(rank, rank === 4 ? (value as number) : 0, rank === 5 ? (value as string) : '');
  }
  return { vector, key: view.key, namespace: view.namespace };
}

/** The direction of each component of a sort vector. */
export function vectorDirections(orderBy: KvSortKey[]): Array<'asc' | 'desc'> {
  return orderBy.flatMap(({ field, direction }) =>
    field.kind === 'column' ? [direction] : [direction, direction, direction],
  );
}

function compareComponent(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  return compareCodePoints(String(a), String(b));
}

/** Orders two positions of the same query: sort keys, then key, then namespace (both ascending). */
export function compareSortPositions(
  a: KvSortPosition,
  b: KvSortPosition,
  directions: Array<'asc' | 'desc'>,
): number {
  for (let i = 0; i < directions.length; i++) {
    const difference = compareComponent(a.vector[i] as number | string, b.vector[i] as number | string);
    if (difference !== 0) return directions[i] === 'desc' ? -difference : difference;
  }
  return compareCodePoints(a.key, b.key) || compareCodePoints(a.namespace, b.namespace);
}

/**
 * Runs a plan over records with the plain evaluator: filter, sort, count,
 * then cursor, offset and limit. The reference answer of every query.
 */
export function evaluatePlan<T extends KvRecordView>(
  records: Iterable<T>,
  plan: Pick<KvQueryPlan, 'where' | 'orderBy' | 'after' | 'offset' | 'limit'>,
): { records: T[]; total: number } {
  const directions = vectorDirections(plan.orderBy);
  const matched = [];
  for (const record of records) {
    if (matchesPredicate(record, plan.where))
      matched.push({ record, position: sortPosition(record, plan.orderBy) });
  }
  matched.sort((a, b) => compareSortPositions(a.position, b.position, directions));
  const after = plan.after;
  const remaining = after
    ? matched.filter((entry) => compareSortPositions(entry.position, after, directions) > 0)
    : matched;
  const end = plan.limit === undefined ? undefined : plan.offset + plan.limit;
  return { records: remaining.slice(plan.offset, end).map((entry) => entry.record), total: matched.length };
}
