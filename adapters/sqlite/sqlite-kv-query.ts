import type { KvFieldRef, KvPredicate, KvQueryPlan, KvScalar, KvSortKey } from '../../src/kv/kv-query.js';
import { vectorDirections } from '../../src/kv/kv-query-eval.js';
import { prefixUpperBound } from '../../src/strings.js';
import { readableJson } from './sqlite-json.js';

/**
 * The KV query DSL (a `KvQueryPlan`) as SQLite SQL over `kode_kv_records r`.
 * Values and metadata are read with `json_type` / `json_extract` and a JSON
 * path that is a bound parameter (every segment JSON-quoted, so `"`, `.`,
 * `\`, NUL and emoji in member names need no escaping rules of ours); every
 * operand is a bound parameter; column names come from a fixed map.
 */

/** The columns of a record row other than its value and metadata, as `KvRecordRow` names them. */
export const RECORD_COLUMNS = `r.instance_id AS instanceId, r.namespace AS namespace, r.key AS key, r.id AS id,
  r.version AS version, r.created_at AS createdAt, r.updated_at AS updatedAt, r.expires_at AS expiresAt,
  r.created_by AS createdBy, r.updated_by AS updatedBy`;

/**
 * Collects bound parameters while a statement is built. Parameters are named
 * (`@p1`, `@p2`, ...), so an expression may appear twice in the text (a range
 * test, a cursor condition) and still bind its values once, in any order.
 */
class Parameters {
  readonly values: Record<string, unknown> = {};
  private next = 1;
  add(value: unknown): string {
    const name = `p${this.next++}`;
    this.values[name] = value;
    return `@${name}`;
  }
}

/** A JSON path for SQLite's JSON functions: each member name JSON-quoted, so any character is literal. */
function jsonPath(path: string[]): string {
  return `$${path.map((segment) => `.${JSON.stringify(segment)}`).join('')}`;
}

const COLUMN_SQL = {
  key: 'r.key',
  namespace: 'r.namespace',
  version: 'r.version',
  createdAt: 'r.created_at',
  updatedAt: 'r.updated_at',
} as const;

const NUMBER_TYPES = "('integer', 'real')";

/** SQL for one JSON field: its type (NULL when missing), its SQL value, its document and bound path. */
function jsonField(field: Extract<KvFieldRef, { kind: 'json' }>, params: Parameters) {
  const document = readableJson(field.document === 'value' ? 'r.value' : 'r.metadata');
  const path = jsonPath(field.path);
  return {
    type: () => `json_type(${document}, ${params.add(path)})`,
    value: () => `json_extract(${document}, ${params.add(path)})`,
    each: () => `json_each(${document}, ${params.add(path)})`,
  };
}

/** The test "same type and value as `operand`" for a JSON field whose type is known to be present. */
function jsonEquals(field: ReturnType<typeof jsonField>, operand: KvScalar, params: Parameters): string {
  if (operand === null) return `${field.type()} = 'null'`;
  if (operand === true) return `${field.type()} = 'true'`;
  if (operand === false) return `${field.type()} = 'false'`;
  if (typeof operand === 'number') {
    return `(${field.type()} IN ${NUMBER_TYPES} AND ${field.value()} = ${params.add(operand)})`;
  }
  return `(${field.type()} = 'text' AND ${field.value()} = ${params.add(operand)})`;
}

function elementEquals(operand: KvScalar, params: Parameters): string {
  if (operand === null) return "e.type = 'null'";
  if (typeof operand === 'boolean') return `e.type = '${operand}'`;
  if (typeof operand === 'number') return `(e.type IN ${NUMBER_TYPES} AND e.value = ${params.add(operand)})`;
  return `(e.type = 'text' AND e.value = ${params.add(operand)})`;
}

/** `text` starts with `prefix`, as an index-friendly range in code-point order. */
function startsWith(text: string, prefix: string, params: Parameters): string {
  const upper = prefixUpperBound(prefix);
  const low = `${text} >= ${params.add(prefix)}`;
  return upper === undefined ? low : `(${low} AND ${text} < ${params.add(upper)})`;
}

/** `text` ends with `suffix`, compared as UTF-8 bytes (`length()` would stop at a NUL inside the text). */
function endsWith(text: string, suffix: string, params: Parameters): string {
  const bytes = Buffer.from(suffix, 'utf8');
  if (bytes.length === 0) return '1';
  return `substr(CAST(${text} AS BLOB), -${params.add(bytes.length)}) = ${params.add(bytes)}`;
}

const ORDERING: Record<string, string> = { gt: '>', gte: '>=', lt: '<', lte: '<=' };

function compileJsonCompare(
  predicate: Extract<KvPredicate, { kind: 'compare' }>,
  field: ReturnType<typeof jsonField>,
  params: Parameters,
): string {
  const { operator, operand } = predicate;
  switch (operator) {
    case 'eq':
      return jsonEquals(field, operand, params);
    case 'neq':
      return `(${field.type()} IS NOT NULL AND NOT ${jsonEquals(field, operand, params)})`;
    case 'contains': {
      const inArray = `(${field.type()} = 'array' AND EXISTS (SELECT 1 FROM ${field.each()} e WHERE ${elementEquals(operand, params)}))`;
      if (typeof operand !== 'string') return inArray;
      const inText = `(${field.type()} = 'text' AND instr(${field.value()}, ${params.add(operand)}) > 0)`;
      return `(${inText} OR ${inArray})`;
    }
    case 'startsWith':
      return `(${field.type()} = 'text' AND ${startsWith(field.value(), operand as string, params)})`;
    case 'endsWith':
      return `(${field.type()} = 'text' AND ${endsWith(field.value(), operand as string, params)})`;
    default: {
      const type = typeof operand === 'number' ? `IN ${NUMBER_TYPES}` : "= 'text'";
      return `(${field.type()} ${type} AND ${field.value()} ${ORDERING[operator]} ${params.add(operand)})`;
    }
  }
}

function compileColumnCompare(
  predicate: Extract<KvPredicate, { kind: 'compare' }>,
  params: Parameters,
): string {
  const column = COLUMN_SQL[(predicate.field as Extract<KvFieldRef, { kind: 'column' }>).column];
  const { operator, operand } = predicate;
  switch (operator) {
    case 'eq':
      return `${column} = ${params.add(operand)}`;
    case 'neq':
      return `${column} <> ${params.add(operand)}`;
    case 'contains':
      return `instr(${column}, ${params.add(operand)}) > 0`;
    case 'startsWith':
      return startsWith(column, operand as string, params);
    case 'endsWith':
      return endsWith(column, operand as string, params);
    default:
      return `${column} ${ORDERING[operator]} ${params.add(operand)}`;
  }
}

/** Translates a predicate; every leaf yields 0 or 1 (never NULL), so NOT and OR mean what they say. */
function compilePredicate(predicate: KvPredicate, params: Parameters): string {
  switch (predicate.kind) {
    case 'and':
    case 'or': {
      if (predicate.items.length === 0) return predicate.kind === 'and' ? '1' : '0';
      const joiner = predicate.kind === 'and' ? ' AND ' : ' OR ';
      return `(${predicate.items.map((item) => compilePredicate(item, params)).join(joiner)})`;
    }
    case 'exists': {
      if (predicate.field.kind === 'column') return predicate.exists ? '1' : '0';
      const type = jsonField(predicate.field, params).type();
      return `${type} IS ${predicate.exists ? 'NOT ' : ''}NULL`;
    }
    case 'in': {
      const { field, negated, operands } = predicate;
      if (field.kind === 'column') {
        if (operands.length === 0) return negated ? '1' : '0';
        const list = operands.map((operand) => params.add(operand)).join(', ');
        return `${COLUMN_SQL[field.column]} ${negated ? 'NOT IN' : 'IN'} (${list})`;
      }
      if (operands.length === 0 && !negated) return '0';
      const json = jsonField(field, params);
      const present = `${json.type()} IS NOT NULL`;
      if (operands.length === 0) return present;
      const any = operands.map((operand) => jsonEquals(json, operand, params)).join(' OR ');
      return `COALESCE(${present} AND ${negated ? 'NOT ' : ''}(${any}), 0)`;
    }
    case 'compare':
      // Columns are NOT NULL, so their comparisons are never NULL: left bare, an index can serve them.
      if (predicate.field.kind === 'column') return `(${compileColumnCompare(predicate, params)})`;
      return `COALESCE(${compileJsonCompare(predicate, jsonField(predicate.field, params), params)}, 0)`;
  }
}

/** The SQL expressions of a sort vector, in the order of `sortPosition`'s components (ties: key, namespace). */
function sortExpressions(orderBy: KvSortKey[], params: Parameters): string[] {
  return orderBy.flatMap(({ field }) => {
    if (field.kind === 'column') return [COLUMN_SQL[field.column]];
    const json = jsonField(field, params);
    return [
      `CASE ${json.type()} WHEN 'null' THEN 1 WHEN 'false' THEN 2 WHEN 'true' THEN 3 WHEN 'integer' THEN 4
        WHEN 'real' THEN 4 WHEN 'text' THEN 5 WHEN 'array' THEN 6 WHEN 'object' THEN 7 ELSE 0 END`,
      `COALESCE(CASE WHEN ${json.type()} IN ${NUMBER_TYPES} THEN ${json.value()} END, 0)`,
      `COALESCE(CASE WHEN ${json.type()} = 'text' THEN ${json.value()} END, '')`,
    ];
  });
}

/** Rows strictly after a cursor position: lexicographic over the sort vector, then key and namespace. */
function afterPosition(plan: KvQueryPlan, params: Parameters): string {
  const after = plan.after;
  if (!after) return '1';
  const directions = [...vectorDirections(plan.orderBy), 'asc', 'asc'];
  const expressions = [...sortExpressions(plan.orderBy, params), 'r.key', 'r.namespace'];
  const values = [...after.vector, after.key, after.namespace].map((value) => params.add(value));
  const alternatives: string[] = [];
  for (let i = 0; i < directions.length; i++) {
    const terms: string[] = [];
    for (let j = 0; j < i; j++) terms.push(`${expressions[j]} = ${values[j]}`);
    terms.push(`${expressions[i]} ${directions[i] === 'desc' ? '<' : '>'} ${values[i]}`);
    alternatives.push(`(${terms.join(' AND ')})`);
  }
  return `(${alternatives.join(' OR ')})`;
}

/** The page and count statements of a plan, sharing one set of named parameters (extra names are ignored). */
export interface SqliteKvQuery {
  page: string;
  total: string;
  parameters: Record<string, unknown>;
}

/** Translates `plan` over the rows live at `now`. */
export function buildKvQuery(plan: KvQueryPlan, now: number): SqliteKvQuery {
  const params = new Parameters();
  const filter = [
    `r.instance_id = ${params.add(plan.instanceId)}`,
    ...(plan.namespace === undefined ? [] : [`r.namespace = ${params.add(plan.namespace)}`]),
    `(r.expires_at IS NULL OR r.expires_at > ${params.add(now)})`,
    compilePredicate(plan.where, params),
  ].join(' AND ');
  const directions = vectorDirections(plan.orderBy);
  const order = [
    ...sortExpressions(plan.orderBy, params).map(
      (sql, i) => `${sql} ${directions[i] === 'desc' ? 'DESC' : 'ASC'}`,
    ),
    'r.key ASC',
    'r.namespace ASC',
  ].join(', ');
  const columns = [
    RECORD_COLUMNS,
    ...(plan.needsValue ? ['r.value AS value'] : []),
    ...(plan.needsMetadata ? ['r.metadata AS metadata'] : []),
  ].join(', ');
  // SQLite needs a LIMIT before an OFFSET; -1 means none.
  const page = `SELECT ${columns} FROM kode_kv_records r WHERE ${filter} AND ${afterPosition(plan, params)}
    ORDER BY ${order} LIMIT ${params.add(plan.limit ?? -1)} OFFSET ${params.add(plan.offset)}`;
  const total = `SELECT count(*) AS n FROM kode_kv_records r WHERE ${filter}`;
  return { page, total, parameters: params.values };
}
