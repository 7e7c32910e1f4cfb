import { toEpochMs } from '../agent/query-filters.js';
import { QueryError } from '../errors.js';
import type { TimeInput } from '../types.js';
import type { KvOperator, KvSelectableField } from './kv-types.js';

/**
 * The query DSL, once for every backend: `normalizeKvQuery` validates a
 * query and reduces it to a `KvQueryPlan` (a QueryError names anything
 * malformed); `matchesPredicate` and `compareSortPositions` (kv-query-eval.ts)
 * are the plain evaluator that defines the answers. The memory backend runs
 * it directly, the conformance model checks every backend against it, and the SQL
 * backends translate the same plan into statements with bound parameters.
 *
 * The semantics, in one place:
 * - A path (`value.a.b`) walks object members only; through an array, a
 *   scalar or a missing member it finds nothing ("missing").
 * - `eq`/`neq`/`in`/`nin` compare scalars by type and value (`1` never
 *   equals `"1"`); `neq` and `nin` never match a missing field.
 * - `gt`/`gte`/`lt`/`lte` match only values of the operand's type: numbers
 *   numerically, strings in code-point order.
 * - `contains`: a substring of a string field, or an element (same type and
 *   value) of an array field. `startsWith`/`endsWith`: string fields only.
 * - `exists`: whether the field is present (a JSON `null` is present).
 * - Order: missing < null < false < true < numbers < strings < arrays <
 *   objects (arrays and objects tie), reversed for `desc`; ties break by key,
 *   then namespace, always ascending.
 */

/** The record columns a query may name directly. `createdAt`/`updatedAt` compare as epoch ms. */
export type KvColumn = 'key' | 'namespace' | 'version' | 'createdAt' | 'updatedAt';

/** What each column holds; in a plan, `time` columns hold epoch ms (numbers). */
export const KV_COLUMN_TYPES: Readonly<Record<KvColumn, 'string' | 'number' | 'time'>> = {
  key: 'string',
  namespace: 'string',
  version: 'number',
  createdAt: 'time',
  updatedAt: 'time',
};

/** A field of the plan: a column, or a path into the JSON of `value` or `metadata` (empty path = the whole document). */
export type KvFieldRef =
  | { kind: 'column'; column: KvColumn }
  | { kind: 'json'; document: 'value' | 'metadata'; path: string[] };

/** An operand of a condition: conditions compare scalars only. */
export type KvScalar = string | number | boolean | null;

/** The operators that compare a field with one operand. */
export type KvCompareOperator = Exclude<KvOperator, 'in' | 'nin' | 'exists'>;

/** A validated condition tree. Column operands are already typed (times as epoch ms). */
export type KvPredicate =
  | { kind: 'and'; items: KvPredicate[] }
  | { kind: 'or'; items: KvPredicate[] }
  | { kind: 'compare'; field: KvFieldRef; operator: KvCompareOperator; operand: KvScalar }
  | { kind: 'in'; field: KvFieldRef; negated: boolean; operands: KvScalar[] }
  | { kind: 'exists'; field: KvFieldRef; exists: boolean };

/** One validated sort key. */
export interface KvSortKey {
  field: KvFieldRef;
  direction: 'asc' | 'desc';
}

/**
 * Where a record stands in a query's order: one component per column sort
 * key and three per JSON sort key (type rank, number or 0, string or ''),
 * then key and namespace. A cursor carries the position of the last record.
 */
export interface KvSortPosition {
  vector: Array<number | string>;
  key: string;
  namespace: string;
}

/** Members to keep of a JSON document: `true` keeps a member whole, a nested selection some of its members. */
export type KvMemberSelection = ReadonlyMap<string, KvMemberSelection | true>;

/**
 * What `select` keeps: whole record fields, and the members of `value` /
 * `metadata` named by dot paths (absent when the document is kept whole).
 */
export interface KvProjection {
  fields: ReadonlySet<KvSelectableField>;
  members: Partial<Record<'value' | 'metadata', KvMemberSelection>>;
}

/** A validated query, ready for a backend. */
export interface KvQueryPlan {
  instanceId: string;
  namespace?: string;
  where: KvPredicate;
  orderBy: KvSortKey[];
  /** Records to return; `undefined` = all. */
  limit?: number;
  offset: number;
  /** Only records strictly after this position (cursor pagination). */
  after?: KvSortPosition;
  /** Whether records must carry `value` / `metadata` (for `select` or for sorting). */
  needsValue: boolean;
  needsMetadata: boolean;
  /** The fields to return; `undefined` = whole records. Applied by the store, not the backend. */
  projection?: KvProjection;
}

/** The fields of a record the evaluator reads; `value`/`metadata` are parsed JSON. */
export interface KvRecordView {
  key: string;
  namespace: string;
  version: number;
  createdAt: number;
  updatedAt: number;
  value?: unknown;
  metadata?: unknown;
}

const OPERATORS = new Set<string>([
  'eq',
  'neq',
  'gt',
  'gte',
  'lt',
  'lte',
  'contains',
  'startsWith',
  'endsWith',
  'in',
  'nin',
  'exists',
]);

/** The record fields `select` may name. */
export const SELECTABLE_FIELDS: readonly KvSelectableField[] = [
  'id',
  'instanceId',
  'namespace',
  'key',
  'value',
  'metadata',
  'version',
  'createdAt',
  'updatedAt',
  'expiresAt',
  'createdBy',
  'updatedBy',
];

/** Bounds that keep a hostile query from building a statement the database refuses. */
export const KV_QUERY_LIMITS = {
  maxPathSegments: 32,
  maxConditions: 256,
  maxDepth: 8,
  maxListLength: 1000,
  maxSortKeys: 8,
} as const;

const QUERY_KEYS = new Set(['from', 'where', 'select', 'orderBy', 'limit', 'offset', 'cursor']);

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function refuseUnknownKeys(value: Record<string, unknown>, allowed: Set<string>, at: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) {
      throw new QueryError(
        `${at}: unknown property ${show(key)}; expected one of ${[...allowed].join(', ')}`,
      );
    }
  }
}

/** Strings in queries must be text every backend can bind: well-formed Unicode without NUL. */
function checkQueryString(value: string, at: string): string {
  if (value.includes('\u0000')) throw new QueryError(`${at}: strings in queries cannot contain U+0000`);
  if (!value.isWellFormed())
    throw new QueryError(`${at}: strings in queries must not contain lone surrogates`);
  return value;
}

function parseField(field: unknown, at: string): KvFieldRef {
  if (typeof field !== 'string') throw new QueryError(`${at}: field must be a string, got ${show(field)}`);
  if (Object.hasOwn(KV_COLUMN_TYPES, field)) return { kind: 'column', column: field as KvColumn };
  const dot = field.indexOf('.');
  const head = dot === -1 ? field : field.slice(0, dot);
  if (head !== 'value' && head !== 'metadata') {
    throw new QueryError(
      `${at}: unknown field ${show(field)}; expected key, namespace, version, createdAt, updatedAt, value, metadata, or a dot path such as value.name or metadata.source`,
    );
  }
  if (dot === -1) return { kind: 'json', document: head, path: [] };
  const path = field.slice(dot + 1).split('.');
  if (path.length > KV_QUERY_LIMITS.maxPathSegments) {
    throw new QueryError(
      `${at}: path ${show(field)} has more than ${KV_QUERY_LIMITS.maxPathSegments} segments`,
    );
  }
  for (const segment of path) {
    if (segment === '') throw new QueryError(`${at}: path ${show(field)} has an empty segment`);
    checkQueryString(segment, `${at}: path ${show(field)}`);
  }
  return { kind: 'json', document: head, path };
}

function fieldName(field: KvFieldRef): string {
  return field.kind === 'column' ? field.column : [field.document, ...field.path].join('.');
}

function scalar(value: unknown, at: string): KvScalar {
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new QueryError(`${at}: numbers must be finite, got ${show(value)}`);
    return value;
  }
  if (typeof value === 'string') return checkQueryString(value, at);
  throw new QueryError(`${at}: expected a string, number, boolean or null, got ${show(value)}`);
}

/** Checks an operand against the operator and the field's type; returns it in the plan's form. */
function operandFor(field: KvFieldRef, operator: string, value: unknown, at: string): KvScalar {
  const name = fieldName(field);
  if (field.kind === 'json') {
    switch (operator) {
      case 'eq':
      case 'neq':
      case 'contains':
        return scalar(value, at);
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte':
        if (typeof value === 'number' || typeof value === 'string') return scalar(value, at);
        throw new QueryError(`${at}: ${operator} on ${name} needs a number or a string, got ${show(value)}`);
      default:
        if (typeof value === 'string') return checkQueryString(value, at);
        throw new QueryError(`${at}: ${operator} on ${name} needs a string, got ${show(value)}`);
    }
  }
  const type = KV_COLUMN_TYPES[field.column];
  if (type === 'string') {
    if (typeof value !== 'string') throw new QueryError(`${at}: ${name} is a string; got ${show(value)}`);
    return checkQueryString(value, at);
  }
  if (operator === 'contains' || operator === 'startsWith' || operator === 'endsWith') {
    throw new QueryError(`${at}: ${operator} applies to strings, and ${name} is a ${type}`);
  }
  if (type === 'number') {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new QueryError(`${at}: ${name} is a number; got ${show(value)}`);
    }
    return value;
  }
  try {
    return toEpochMs(value as TimeInput, name);
  } catch (error) {
    throw new QueryError(`${at}: ${(error as Error).message}`);
  }
}

interface ParseBudget {
  conditions: number;
}

function parseWhereItem(item: unknown, at: string, depth: number, budget: ParseBudget): KvPredicate {
  if (!isPlainObject(item)) throw new QueryError(`${at}: expected a condition object, got ${show(item)}`);
  if ('or' in item || 'and' in item) {
    const kind = 'or' in item ? 'or' : 'and';
    refuseUnknownKeys(item, new Set([kind]), at);
    if (depth >= KV_QUERY_LIMITS.maxDepth) {
      throw new QueryError(`${at}: groups are nested deeper than ${KV_QUERY_LIMITS.maxDepth} levels`);
    }
    const list = item[kind];
    if (!Array.isArray(list) || list.length === 0) {
      throw new QueryError(`${at}.${kind}: expected a non-empty array of conditions`);
    }
    return {
      kind,
      items: list.map((child, i) => parseWhereItem(child, `${at}.${kind}[${i}]`, depth + 1, budget)),
    };
  }
  refuseUnknownKeys(item, new Set(['field', 'operator', 'value']), at);
  budget.conditions++;
  if (budget.conditions > KV_QUERY_LIMITS.maxConditions) {
    throw new QueryError(`where: more than ${KV_QUERY_LIMITS.maxConditions} conditions`);
  }
  const field = parseField(item.field, at);
  const operator = item.operator;
  if (typeof operator !== 'string' || !OPERATORS.has(operator)) {
    throw new QueryError(
      `${at}: unknown operator ${show(operator)}; expected one of ${[...OPERATORS].join(', ')}`,
    );
  }
  if (operator === 'exists') {
    const flag = item.value ?? true;
    if (typeof flag !== 'boolean')
      throw new QueryError(`${at}: exists needs true or false, got ${show(flag)}`);
    return { kind: 'exists', field, exists: flag };
  }
  if (operator === 'in' || operator === 'nin') {
    const list = item.value;
    if (!Array.isArray(list)) throw new QueryError(`${at}: ${operator} needs an array, got ${show(list)}`);
    if (list.length > KV_QUERY_LIMITS.maxListLength) {
      throw new QueryError(`${at}: ${operator} lists at most ${KV_QUERY_LIMITS.maxListLength} values`);
    }
    return {
      kind: 'in',
      field,
      negated: operator === 'nin',
      operands: list.map((value, i) => operandFor(field, 'eq', value, `${at}.value[${i}]`)),
    };
  }
  if (!('value' in item)) throw new QueryError(`${at}: ${operator} needs a value`);
  return {
    kind: 'compare',
    field,
    operator: operator as KvCompareOperator,
    operand: operandFor(field, operator, item.value, `${at}.value`),
  };
}

function count(value: unknown, name: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new QueryError(`${name} must be a non-negative integer, got ${show(value)}`);
  }
  return value;
}

function parseOrderBy(value: unknown): KvSortKey[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  if (list.length > KV_QUERY_LIMITS.maxSortKeys) {
    throw new QueryError(`orderBy: at most ${KV_QUERY_LIMITS.maxSortKeys} sort keys`);
  }
  return list.map((entry, i) => {
    const at = Array.isArray(value) ? `orderBy[${i}]` : 'orderBy';
    if (!isPlainObject(entry))
      throw new QueryError(`${at}: expected { field, direction }, got ${show(entry)}`);
    refuseUnknownKeys(entry, new Set(['field', 'direction']), at);
    const direction = entry.direction ?? 'asc';
    if (direction !== 'asc' && direction !== 'desc') {
      throw new QueryError(`${at}: direction must be 'asc' or 'desc', got ${show(direction)}`);
    }
    return { field: parseField(entry.field, at), direction };
  });
}

/** Adds a member path to a selection; a member kept whole absorbs every path inside it. */
function selectMember(selection: Map<string, KvMemberSelection | true>, path: string[]): void {
  const [segment, ...rest] = path as [string, ...string[]];
  const existing = selection.get(segment);
  if (existing === true) return;
  if (rest.length === 0) {
    selection.set(segment, true);
    return;
  }
  const child = (existing ?? new Map()) as Map<string, KvMemberSelection | true>;
  selection.set(segment, child);
  selectMember(child, rest);
}

function parseSelect(value: unknown): KvProjection | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.length === 0) {
    throw new QueryError(`select must be a non-empty array of field names, got ${show(value)}`);
  }
  const fields = new Set<KvSelectableField>();
  const members = { value: new Map(), metadata: new Map() } as const;
  for (const [i, name] of (value as unknown[]).entries()) {
    if (typeof name === 'string' && (SELECTABLE_FIELDS as readonly string[]).includes(name)) {
      fields.add(name as KvSelectableField);
      continue;
    }
    if (typeof name !== 'string' || !/^(value|metadata)\./.test(name)) {
      throw new QueryError(
        `select[${i}]: unknown field ${show(name)}; expected one of ${SELECTABLE_FIELDS.join(', ')}, or a dot path such as value.name or metadata.source`,
      );
    }
    const field = parseField(name, `select[${i}]`) as Extract<KvFieldRef, { kind: 'json' }>;
    selectMember(members[field.document], field.path);
  }
  const projection: KvProjection = { fields, members: {} };
  for (const document of ['value', 'metadata'] as const) {
    if (!fields.has(document) && members[document].size > 0) projection.members[document] = members[document];
  }
  return projection;
}

function usesDocument(predicate: KvPredicate, document: 'value' | 'metadata'): boolean {
  if (predicate.kind === 'and' || predicate.kind === 'or')
    return predicate.items.some((p) => usesDocument(p, document));
  return predicate.field.kind === 'json' && predicate.field.document === document;
}

/** Which JSON documents the plan's conditions or sort keys read (what a backend must load to answer it). */
export function planDocuments(plan: Pick<KvQueryPlan, 'where' | 'orderBy'>): {
  value: boolean;
  metadata: boolean;
} {
  const sorts = (document: 'value' | 'metadata') =>
    plan.orderBy.some((key) => key.field.kind === 'json' && key.field.document === document);
  return {
    value: usesDocument(plan.where, 'value') || sorts('value'),
    metadata: usesDocument(plan.where, 'metadata') || sorts('metadata'),
  };
}

/**
 * Validates a query and returns its plan (without `after`: the caller decodes
 * the cursor). Every problem is a `QueryError` whose message says where it is
 * (`where[1].operator: unknown operator "like"; expected one of ...`).
 */
export function normalizeKvQuery(query: unknown): KvQueryPlan & { cursor?: string } {
  if (!isPlainObject(query)) throw new QueryError(`the query must be an object, got ${show(query)}`);
  refuseUnknownKeys(query, QUERY_KEYS, 'query');
  const from = query.from;
  if (!isPlainObject(from)) throw new QueryError('from must be an object { instance, namespace? }');
  refuseUnknownKeys(from, new Set(['instance', 'namespace']), 'from');
  if (typeof from.instance !== 'string' || from.instance === '') {
    throw new QueryError(`from.instance must be a non-empty string, got ${show(from.instance)}`);
  }
  checkQueryString(from.instance, 'from.instance');
  let namespace: string | undefined;
  if (from.namespace !== undefined && from.namespace !== null) {
    if (typeof from.namespace !== 'string' || from.namespace === '') {
      throw new QueryError(`from.namespace must be a non-empty string, got ${show(from.namespace)}`);
    }
    namespace = checkQueryString(from.namespace, 'from.namespace');
  }
  const rawWhere = query.where ?? [];
  if (!Array.isArray(rawWhere))
    throw new QueryError(`where must be an array of conditions, got ${show(rawWhere)}`);
  const budget = { conditions: 0 };
  const where: KvPredicate = {
    kind: 'and',
    items: rawWhere.map((item, i) => parseWhereItem(item, `where[${i}]`, 1, budget)),
  };
  const orderBy = parseOrderBy(query.orderBy);
  const projection = parseSelect(query.select);
  const limit = count(query.limit, 'limit');
  const offset = count(query.offset, 'offset') ?? 0;
  let cursor: string | undefined;
  if (query.cursor !== undefined && query.cursor !== null) {
    if (typeof query.cursor !== 'string' || query.cursor === '') {
      throw new QueryError(
        `cursor must be the nextCursor string of a previous page, got ${show(query.cursor)}`,
      );
    }
    if (offset > 0) throw new QueryError('use either offset or cursor, not both');
    cursor = query.cursor;
  }
  const needs = (document: 'value' | 'metadata') =>
    !projection ||
    projection.fields.has(document) ||
    projection.members[document] !== undefined ||
    orderBy.some((key) => key.field.kind === 'json' && key.field.document === document);
  return {
    instanceId: from.instance,
    namespace,
    where,
    orderBy,
    limit,
    offset,
    cursor,
    projection,
    needsValue: needs('value'),
    needsMetadata: needs('metadata'),
  };
}
