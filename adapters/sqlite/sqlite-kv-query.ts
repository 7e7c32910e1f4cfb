import type { KvColumn, KvQueryPlan, KvScalar } from '../../src/kv/kv-query.js';
import {
  KV_COLUMN_SQL,
  type KvJsonField,
  type KvSortComponent,
  type KvSqlDialect,
  translateOrder,
  translatePredicate,
} from '../../src/kv/kv-query-sql.js';
import { readableJson } from './sqlite-json.js';

/**
 * The KV query DSL (a `KvQueryPlan`) as SQLite SQL over `kode_kv_records r`,
 * through the shared walk (src/kv/kv-query-sql.ts).
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

const NUMBER_TYPES = "('integer', 'real')";

/** SQL for one JSON field: its type (NULL when missing) and its SQL value, each with the path bound anew. */
interface SqliteJsonField {
  type(): string;
  value(): string;
  each(): string;
}

/**
 * SQLite's words for the shared walk (src/kv/kv-query-sql.ts): conditions
 * are 0 or 1, JSON is read with `json_type` / `json_extract`, text compares
 * in BINARY (code-point) order, and parameters are named.
 */
class SqliteKvSql implements KvSqlDialect<SqliteJsonField> {
  readonly true = '1';
  readonly false = '0';
  constructor(readonly params: Parameters) {}

  orFalse(condition: string): string {
    return `COALESCE(${condition}, 0)`;
  }
  param(value: KvScalar): string {
    return this.params.add(value);
  }
  textCompare(text: string, op: string, value: string): string {
    return `${text} ${op} ${this.params.add(value)}`;
  }
  contains(text: string, needle: string): string {
    return `instr(${text}, ${this.params.add(needle)}) > 0`;
  }
  /** Compared as UTF-8 bytes (`length()` would stop at a NUL inside the text). */
  endsWith(text: string, suffix: string): string {
    const bytes = Buffer.from(suffix, 'utf8');
    if (bytes.length === 0) return '1';
    return `substr(CAST(${text} AS BLOB), -${this.params.add(bytes.length)}) = ${this.params.add(bytes)}`;
  }
  columnIn(column: KvColumn, operands: KvScalar[], negated: boolean): string {
    const list = operands.map((operand) => this.params.add(operand)).join(', ');
    return `${KV_COLUMN_SQL[column]} ${negated ? 'NOT IN' : 'IN'} (${list})`;
  }
  json(field: KvJsonField): SqliteJsonField {
    const document = readableJson(field.document === 'value' ? 'r.value' : 'r.metadata');
    const path = jsonPath(field.path);
    return {
      type: () => `json_type(${document}, ${this.params.add(path)})`,
      value: () => `json_extract(${document}, ${this.params.add(path)})`,
      each: () => `json_each(${document}, ${this.params.add(path)})`,
    };
  }
  jsonExists(field: SqliteJsonField, exists: boolean): string {
    return `${field.type()} IS ${exists ? 'NOT ' : ''}NULL`;
  }
  jsonEquals(field: SqliteJsonField, operand: KvScalar): string {
    return this.equals(field.type(), field.value, operand);
  }
  jsonIn(field: SqliteJsonField, operands: KvScalar[]): string {
    return operands.map((operand) => this.jsonEquals(field, operand)).join(' OR ');
  }
  whenText(field: SqliteJsonField, condition: (text: string) => string): string {
    return `(${field.type()} = 'text' AND ${condition(field.value())})`;
  }
  whenNumber(field: SqliteJsonField, condition: (number: string) => string): string {
    return `(${field.type()} IN ${NUMBER_TYPES} AND ${condition(field.value())})`;
  }
  arrayContains(field: SqliteJsonField, operand: KvScalar): string {
    const element = this.equals('e.type', () => 'e.value', operand);
    return `(${field.type()} = 'array' AND EXISTS (SELECT 1 FROM ${field.each()} e WHERE ${element}))`;
  }
  sortKey(field: SqliteJsonField): KvSortComponent[] {
    return [
      {
        sql: `CASE ${field.type()} WHEN 'null' THEN 1 WHEN 'false' THEN 2 WHEN 'true' THEN 3 WHEN 'integer' THEN 4
        WHEN 'real' THEN 4 WHEN 'text' THEN 5 WHEN 'array' THEN 6 WHEN 'object' THEN 7 ELSE 0 END`,
        kind: 'number',
      },
      {
        sql: `COALESCE(CASE WHEN ${field.type()} IN ${NUMBER_TYPES} THEN ${field.value()} END, 0)`,
        kind: 'number',
      },
      { sql: `COALESCE(CASE WHEN ${field.type()} = 'text' THEN ${field.value()} END, '')`, kind: 'text' },
    ];
  }
  cursorTerm(component: KvSortComponent, op: '=' | '<' | '>', value: number | string): string {
    return `${component.sql} ${op} ${this.params.add(value)}`;
  }

  /** The test "same type and value as `operand`", for a JSON type (NULL when missing) and value. */
  private equals(type: string, value: () => string, operand: KvScalar): string {
    if (operand === null) return `${type} = 'null'`;
    if (typeof operand === 'boolean') return `${type} = '${operand}'`;
    const typed = typeof operand === 'number' ? `${type} IN ${NUMBER_TYPES}` : `${type} = 'text'`;
    return `(${typed} AND ${value()} = ${this.params.add(operand)})`;
  }
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
  const sql = new SqliteKvSql(params);
  const filter = [
    `r.instance_id = ${params.add(plan.instanceId)}`,
    ...(plan.namespace === undefined ? [] : [`r.namespace = ${params.add(plan.namespace)}`]),
    `(r.expires_at IS NULL OR r.expires_at > ${params.add(now)})`,
    translatePredicate(plan.where, sql),
  ].join(' AND ');
  const order = translateOrder(plan, sql);
  const columns = [
    RECORD_COLUMNS,
    ...(plan.needsValue ? ['r.value AS value'] : []),
    ...(plan.needsMetadata ? ['r.metadata AS metadata'] : []),
  ].join(', ');
  // SQLite needs a LIMIT before an OFFSET; -1 means none.
  const page = `SELECT ${columns} FROM kode_kv_records r WHERE ${filter} AND ${order.after}
    ORDER BY ${order.orderBy} LIMIT ${params.add(plan.limit ?? -1)} OFFSET ${params.add(plan.offset)}`;
  const total = `SELECT count(*) AS n FROM kode_kv_records r WHERE ${filter}`;
  return { page, total, parameters: params.values };
}
