import { prefixUpperBound } from '../strings.js';
import {
  KV_COLUMN_TYPES,
  type KvColumn,
  type KvCompareOperator,
  type KvFieldRef,
  type KvPredicate,
  type KvQueryPlan,
  type KvScalar,
  type KvSortKey,
} from './kv-query.js';
import { vectorDirections } from './kv-query-eval.js';

/**
 * A `KvQueryPlan` as SQL, walked once for every SQL backend: what `and`,
 * `or`, `in`/`nin`, `exists` and each compare operator mean (kv-query.ts)
 * is decided here, and a backend's `KvSqlDialect` only says how its SQL
 * writes a JSON field, a bound parameter, a type test or a text
 * comparison. The memory backend and MongoDB run the plain evaluator
 * instead (kv-query-eval.ts), so every answer is checked against it.
 */

/** A field that is a path into the JSON of `value` or `metadata`. */
export type KvJsonField = Extract<KvFieldRef, { kind: 'json' }>;

/** One component of a sort vector in SQL, and whether its cursor values are numbers or strings. */
export interface KvSortComponent {
  sql: string;
  kind: 'number' | 'text';
}

/**
 * How one SQL backend writes the pieces of a query; the dialect object of a
 * statement also collects the statement's bound parameters. `J` is the
 * backend's handle of one JSON field (made by `json`, used by one condition).
 * Conditions it returns may be NULL where a JSON field is missing: the walk
 * makes every condition true or false (`orFalse`), so NOT and OR mean what
 * they say.
 */
export interface KvSqlDialect<J> {
  readonly true: string;
  readonly false: string;
  /** `condition`, or false where it is NULL. */
  orFalse(condition: string): string;
  /** A bound parameter holding a scalar compared with a column, or with a JSON value of the scalar's type. */
  param(value: KvScalar): string;
  /** `text op value` in code-point order (what an index on a text column serves). */
  textCompare(text: string, op: string, value: string): string;
  /** `text` holds `needle`. */
  contains(text: string, needle: string): string;
  /** `text` ends with `suffix`. */
  endsWith(text: string, suffix: string): string;
  /** The column is (`negated`: is not) one of `operands`, which are not empty and of the column's type. */
  columnIn(column: KvColumn, operands: KvScalar[], negated: boolean): string;
  json(field: KvJsonField): J;
  /** The field is present (`exists`) or missing; never NULL. */
  jsonExists(field: J, exists: boolean): string;
  /** The field has the operand's type and value. */
  jsonEquals(field: J, operand: KvScalar): string;
  /** The field equals one of `operands` (not empty), by type and value. */
  jsonIn(field: J, operands: KvScalar[]): string;
  /** `condition` of the field's text, where the field is a string. */
  whenText(field: J, condition: (text: string) => string): string;
  /** `condition` of the field's number, where the field is a number. */
  whenNumber(field: J, condition: (number: string) => string): string;
  /** The field is an array with an element of the operand's type and value. */
  arrayContains(field: J, operand: KvScalar): string;
  /** The three components a JSON sort key adds to the vector: type rank, number or 0, string or ''. */
  sortKey(field: J): KvSortComponent[];
  /** `component op value` for a cursor position's value. */
  cursorTerm(component: KvSortComponent, op: '=' | '<' | '>', value: number | string): string;
}

/** The columns of `kode_kv_records r` a query may name: the same in every SQL schema. */
export const KV_COLUMN_SQL: Readonly<Record<KvColumn, string>> = {
  key: 'r.key',
  namespace: 'r.namespace',
  version: 'r.version',
  createdAt: 'r.created_at',
  updatedAt: 'r.updated_at',
};

const ORDERING: Record<string, string> = { gt: '>', gte: '>=', lt: '<', lte: '<=' };

/** `text` starts with `prefix`, as a range in code-point order that an index can serve. */
function startsWith<J>(text: string, prefix: string, d: KvSqlDialect<J>): string {
  const upper = prefixUpperBound(prefix);
  const low = d.textCompare(text, '>=', prefix);
  return upper === undefined ? low : `(${low} AND ${d.textCompare(text, '<', upper)})`;
}

function columnCompare<J>(
  column: KvColumn,
  operator: KvCompareOperator,
  operand: KvScalar,
  d: KvSqlDialect<J>,
): string {
  const sql = KV_COLUMN_SQL[column];
  switch (operator) {
    case 'eq':
      return `${sql} = ${d.param(operand)}`;
    case 'neq':
      return `${sql} <> ${d.param(operand)}`;
    case 'contains':
      return d.contains(sql, operand as string);
    case 'startsWith':
      return startsWith(sql, operand as string, d);
    case 'endsWith':
      return d.endsWith(sql, operand as string);
    default:
      return `${sql} ${ORDERING[operator]} ${d.param(operand)}`;
  }
}

function jsonCompare<J>(
  field: J,
  operator: KvCompareOperator,
  operand: KvScalar,
  d: KvSqlDialect<J>,
): string {
  switch (operator) {
    case 'eq':
      return d.jsonEquals(field, operand);
    case 'neq':
      return `(${d.jsonExists(field, true)} AND NOT ${d.jsonEquals(field, operand)})`;
    case 'contains': {
      const inArray = d.arrayContains(field, operand);
      if (typeof operand !== 'string') return inArray;
      return `(${d.whenText(field, (text) => d.contains(text, operand))} OR ${inArray})`;
    }
    case 'startsWith':
      return d.whenText(field, (text) => startsWith(text, operand as string, d));
    case 'endsWith':
      return d.whenText(field, (text) => d.endsWith(text, operand as string));
    default: {
      // Ranges match only values of the operand's type.
      const op = ORDERING[operator] as string;
      return typeof operand === 'number'
        ? d.whenNumber(field, (number) => `${number} ${op} ${d.param(operand)}`)
        : d.whenText(field, (text) => d.textCompare(text, op, operand as string));
    }
  }
}

/** Translates a predicate; the result is true or false for every row, never NULL. */
export function translatePredicate<J>(predicate: KvPredicate, d: KvSqlDialect<J>): string {
  switch (predicate.kind) {
    case 'and':
    case 'or': {
      if (predicate.items.length === 0) return predicate.kind === 'and' ? d.true : d.false;
      const joiner = predicate.kind === 'and' ? ' AND ' : ' OR ';
      return `(${predicate.items.map((item) => translatePredicate(item, d)).join(joiner)})`;
    }
    case 'exists':
      // Every column is present on every record.
      if (predicate.field.kind === 'column') return predicate.exists ? d.true : d.false;
      return d.jsonExists(d.json(predicate.field), predicate.exists);
    case 'in': {
      const { field, negated, operands } = predicate;
      if (field.kind === 'column') {
        if (operands.length === 0) return negated ? d.true : d.false;
        return d.columnIn(field.column, operands, negated);
      }
      // `nin` never matches a missing field.
      if (operands.length === 0 && !negated) return d.false;
      const json = d.json(field);
      const present = d.jsonExists(json, true);
      if (operands.length === 0) return present;
      return d.orFalse(`${present} AND ${negated ? 'NOT ' : ''}(${d.jsonIn(json, operands)})`);
    }
    case 'compare':
      // Columns are NOT NULL, so their comparisons are never NULL: left bare, an index can serve them.
      if (predicate.field.kind === 'column') {
        return `(${columnCompare(predicate.field.column, predicate.operator, predicate.operand, d)})`;
      }
      return d.orFalse(jsonCompare(d.json(predicate.field), predicate.operator, predicate.operand, d));
  }
}

/** The SQL of each sort-vector component, in the order of `sortPosition`'s (kv-query-eval.ts). */
function sortComponents<J>(orderBy: KvSortKey[], d: KvSqlDialect<J>): KvSortComponent[] {
  return orderBy.flatMap(({ field }) =>
    field.kind === 'column'
      ? [
          {
            sql: KV_COLUMN_SQL[field.column],
            kind: KV_COLUMN_TYPES[field.column] === 'string' ? 'text' : 'number',
          },
        ]
      : d.sortKey(d.json(field)),
  );
}

/**
 * A plan's order as SQL: the `ORDER BY` list (the sort vector, then key and
 * namespace ascending), and the condition "strictly after the cursor"
 * (lexicographic over the same vector; true without a cursor).
 */
export function translateOrder<J>(
  plan: Pick<KvQueryPlan, 'orderBy' | 'after'>,
  d: KvSqlDialect<J>,
): { orderBy: string; after: string } {
  const components: KvSortComponent[] = [
    ...sortComponents(plan.orderBy, d),
    { sql: KV_COLUMN_SQL.key, kind: 'text' },
    { sql: KV_COLUMN_SQL.namespace, kind: 'text' },
  ];
  const directions = [...vectorDirections(plan.orderBy), 'asc', 'asc'];
  const orderBy = components
    .map((component, i) => `${component.sql} ${directions[i] === 'desc' ? 'DESC' : 'ASC'}`)
    .join(', ');
  const after = plan.after;
  if (!after) return { orderBy, after: d.true };
  const values = [...after.vector, after.key, after.namespace];
  const alternatives: string[] = [];
  for (let i = 0; i < components.length; i++) {
    const terms: string[] = [];
    for (let j = 0; j < i; j++) {
      terms.push(d.cursorTerm(components[j] as KvSortComponent, '=', values[j] as number | string));
    }
    const op = directions[i] === 'desc' ? '<' : '>';
    terms.push(d.cursorTerm(components[i] as KvSortComponent, op, values[i] as number | string));
    alternatives.push(`(${terms.join(' AND ')})`);
  }
  return { orderBy, after: `(${alternatives.join(' OR ')})` };
}
