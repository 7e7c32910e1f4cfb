import type { KvQueryRow, KvRecordRow } from '../../src/kv/kv-backend.js';
import {
  KV_COLUMN_TYPES,
  type KvColumn,
  type KvQueryPlan,
  type KvScalar,
  planDocuments,
} from '../../src/kv/kv-query.js';
import {
  compareSortPositions,
  evaluatePlan,
  sortPosition,
  vectorDirections,
} from '../../src/kv/kv-query-eval.js';
import {
  KV_COLUMN_SQL,
  type KvJsonField,
  type KvSortComponent,
  type KvSqlDialect,
  translateOrder,
  translatePredicate,
} from '../../src/kv/kv-query-sql.js';
import { viewOfRow } from '../../src/kv/kv-records.js';
import type { PostgresConnection, Queryable, Statement } from './postgres-connection.js';
import { type buildKvStatements, kvRecordsTable, RECORD_COLUMNS } from './postgres-kv-statements.js';

/**
 * The KV query DSL (a `KvQueryPlan`) as SQL over `kode_kv_records`, through
 * the shared walk (src/kv/kv-query-sql.ts).
 *
 * Queries read the stored JSON text as `jsonb`, cast per row. A row whose
 * JSON jsonb cannot represent (`jsonb_ok = false`, decided when it is
 * written) is kept out of the SQL and evaluated by the plain evaluator
 * instead, and the two sorted streams are merged: the answer is the same as
 * on every backend, and the rare rows cost only their own evaluation (a
 * partial index finds them). Every value, JSON path segment and cursor
 * position is a bound parameter; only fixed fragments are in the SQL text.
 */

/**
 * A `\u0000` or lone-surrogate escape (preceded by an even number of
 * backslashes, so not an escaped backslash followed by "u0000"): JSON text
 * jsonb refuses. `JSON.stringify` writes surrogate pairs as characters, so
 * any `\udXXX` escape in its output is a lone surrogate.
 */
const NOT_JSONB = /(?:^|[^\\])(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** Whether PostgreSQL's jsonb can read this JSON text exactly. */
export function isJsonbReadable(jsonText: string): boolean {
  return !NOT_JSONB.test(jsonText);
}

/** Numbered parameters (`$1`, `$2`, ...); a placeholder may appear any number of times. */
class Parameters {
  readonly values: unknown[] = [];
  add(value: unknown, cast = ''): string {
    this.values.push(value);
    return `$${this.values.length}${cast}`;
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what this looks for.
const LONE_OR_NUL = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const asNumber = (x: string) => `(CASE WHEN jsonb_typeof(${x}) = 'number' THEN (${x})::numeric END)`;
const asText = (x: string) => `(CASE WHEN jsonb_typeof(${x}) = 'string' THEN ${x} #>> '{}' END)`;

/**
 * PostgreSQL's words for the shared walk (src/kv/kv-query-sql.ts): a JSON
 * field is a jsonb expression (NULL when missing) compared as jsonb, text
 * compares in the "C" collation (code-point order), and parameters are
 * numbered and cast.
 */
class PostgresKvSql implements KvSqlDialect<string> {
  readonly true = 'true';
  readonly false = 'false';
  constructor(readonly params: Parameters) {}

  orFalse(condition: string): string {
    return `COALESCE(${condition}, false)`;
  }
  param(value: KvScalar): string {
    return this.params.add(value, typeof value === 'number' ? '::numeric' : '::text');
  }
  textCompare(text: string, op: string, value: string): string {
    return `${text} ${op} ${this.params.add(value, '::text')} COLLATE "C"`;
  }
  contains(text: string, needle: string): string {
    return `strpos(${text}, ${this.params.add(needle, '::text')}) > 0`;
  }
  endsWith(text: string, suffix: string): string {
    if (suffix === '') return `${text} IS NOT NULL`;
    const bound = this.params.add(suffix, '::text');
    return `right(${text}, char_length(${bound})) = ${bound}`;
  }
  columnIn(column: KvColumn, operands: KvScalar[], negated: boolean): string {
    const list = this.params.add(operands, KV_COLUMN_TYPES[column] === 'string' ? '::text[]' : '::numeric[]');
    return `${negated ? 'NOT ' : ''}(${KV_COLUMN_SQL[column]} = ANY(${list}))`;
  }
  /** The field's jsonb: each path segment a bound text parameter, walked with `->` (object members only). */
  json(field: KvJsonField): string {
    const document = field.document === 'value' ? 'd.v' : 'd.m';
    return field.path.reduce((sql, segment) => `(${sql} -> ${this.params.add(segment, '::text')})`, document);
  }
  jsonExists(x: string, exists: boolean): string {
    return `(${x} IS ${exists ? 'NOT ' : ''}NULL)`;
  }
  jsonEquals(x: string, operand: KvScalar): string {
    return `${x} = ${this.params.add(JSON.stringify(operand), '::jsonb')}`;
  }
  jsonIn(x: string, operands: KvScalar[]): string {
    const list = operands.map((operand) => JSON.stringify(operand));
    return `${x} = ANY(${this.params.add(list, '::jsonb[]')})`;
  }
  whenText(x: string, condition: (text: string) => string): string {
    return condition(asText(x));
  }
  whenNumber(x: string, condition: (number: string) => string): string {
    return condition(asNumber(x));
  }
  /** In a CASE, so that `jsonb_array_elements` never sees a value that is not an array. */
  arrayContains(x: string, operand: KvScalar): string {
    const element = this.params.add(JSON.stringify(operand), '::jsonb');
    return `(CASE WHEN jsonb_typeof(${x}) = 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements(${x}) e(v) WHERE e.v = ${element}) ELSE false END)`;
  }
  sortKey(x: string): KvSortComponent[] {
    return [
      {
        sql: `(CASE jsonb_typeof(${x}) WHEN 'null' THEN 1 WHEN 'boolean' THEN (CASE WHEN ${x} = 'true'::jsonb THEN 3 ELSE 2 END)
          WHEN 'number' THEN 4 WHEN 'string' THEN 5 WHEN 'array' THEN 6 WHEN 'object' THEN 7 ELSE 0 END)`,
        kind: 'number',
      },
      { sql: `COALESCE(${asNumber(x)}, 0)`, kind: 'number' },
      { sql: `COALESCE(${asText(x)}, '') COLLATE "C"`, kind: 'text' },
    ];
  }
  /**
   * A text position taken from a row jsonb could not read (NUL or a lone
   * surrogate in it) cannot be bound as text; but the SQL side only holds
   * strings without either, and against those `s > c` is exactly `s >= c'`
   * and `s < c` is `s < c'`, where c' is c cut at the first such character,
   * which is replaced by the next character a string can hold there (U+0001
   * after NUL, U+E000 after a surrogate).
   */
  cursorTerm(component: KvSortComponent, op: '=' | '<' | '>', value: number | string): string {
    if (component.kind === 'number') return `${component.sql} ${op} ${this.params.add(value, '::numeric')}`;
    let text = String(value);
    const odd = LONE_OR_NUL.exec(text);
    if (!odd) return `${component.sql} ${op} ${this.params.add(text, '::text')}`;
    if (op === '=') return this.false;
    text = text.slice(0, odd.index) + (odd[0] === '\u0000' ? '\u0001' : '\uE000');
    return `${component.sql} ${op === '>' ? '>=' : '<'} ${this.params.add(text, '::text')}`;
  }
}

/**
 * Answers a plan: the SQL page of the rows jsonb can read, merged with the
 * rows it cannot (evaluated here), and the total. One statement runs on its
 * own; several run in one read-only snapshot, so the page, the rows set
 * aside and the total agree. A read replica may answer (`db.read`).
 */
export function queryKvRecords(
  db: PostgresConnection,
  sql: ReturnType<typeof buildKvStatements>,
  plan: KvQueryPlan,
  now: number,
): Promise<{ rows: KvQueryRow[]; total: number } | undefined> {
  const read = planDocuments(plan);
  const readsJson = read.value || read.metadata;
  const params = new Parameters();
  const dialect = new PostgresKvSql(params);
  const scope = [`r.instance_id = ${params.add(plan.instanceId, '::text')}`];
  if (plan.namespace !== undefined) scope.push(`r.namespace = ${params.add(plan.namespace, '::text')}`);
  scope.push(`(r.expires_at IS NULL OR r.expires_at > ${params.add(now, '::bigint')})`);
  const scopeValues = params.values.length;
  // Rows jsonb cannot read are left to the plain evaluator (below); the
  // CASE keeps the cast from ever seeing them, whatever order PostgreSQL
  // evaluates the conditions in.
  const documents = [
    ...(read.value ? ['CASE WHEN r.jsonb_ok THEN r.value::jsonb END AS v'] : []),
    ...(read.metadata ? ['CASE WHEN r.jsonb_ok THEN r.metadata::jsonb END AS m'] : []),
  ];
  // OFFSET 0 keeps the subquery from being inlined: each row's text is parsed once, not per reference.
  const from = `${kvRecordsTable(db)} r${documents.length > 0 ? ` CROSS JOIN LATERAL (SELECT ${documents.join(', ')} OFFSET 0) d` : ''}`;
  const filter = [
    ...scope,
    ...(readsJson ? ['r.jsonb_ok'] : []),
    translatePredicate(plan.where, dialect),
  ].join(' AND ');
  // The count statement binds exactly the filter's parameters (PostgreSQL refuses unused ones).
  const filterValues = [...params.values];
  const order = translateOrder(plan, dialect);
  const columns = [
    RECORD_COLUMNS,
    ...(plan.needsValue ? ['r.value'] : []),
    ...(plan.needsMetadata ? ['r.metadata'] : []),
  ].join(', ');

  // Without limit, offset or cursor the page is every match: its length is the total.
  const counts = plan.limit !== undefined || plan.offset > 0 || plan.after !== undefined;
  const answer = async (tx: Queryable) => {
    const aside = readsJson
      ? await tx.query<KvRecordRow>(
          plan.namespace !== undefined ? sql.notJsonbRowsInNamespace : sql.notJsonbRowsInInstance,
          params.values.slice(0, scopeValues),
        )
      : [];
    const evaluated = evaluatePlan(
      aside.map((row) => ({ ...viewOfRow(row), row })),
      { where: plan.where, orderBy: plan.orderBy, after: plan.after, offset: 0, limit: undefined },
    );
    // With rows aside, the SQL page starts at 0 and covers offset + limit, and the merge cuts the page.
    const merging = evaluated.total > 0;
    const sqlLimit = plan.limit === undefined ? null : merging ? plan.offset + plan.limit : plan.limit;
    const sqlOffset = merging ? 0 : plan.offset;
    const pageValues = [...params.values];
    const limitSql = `LIMIT $${pageValues.push(sqlLimit)}::bigint OFFSET $${pageValues.push(sqlOffset)}::bigint`;
    const rows = await tx.query<KvQueryRow>(
      `SELECT ${columns} FROM ${from} WHERE ${filter} AND ${order.after} ORDER BY ${order.orderBy} ${limitSql}`,
      pageValues,
    );
    const [counted] = counts
      ? await tx.query<{ n: number }>(`SELECT count(*) AS n FROM ${from} WHERE ${filter}`, filterValues)
      : [{ n: rows.length }];
    // evaluatePlan's total ignores the cursor, like the SQL count.
    const total = Number(counted?.n ?? 0) + evaluated.total;
    if (total === 0 && !(await tx.query(sql.instanceExists, [plan.instanceId])).length) return undefined;
    if (!merging) return { rows, total };
    const directions = vectorDirections(plan.orderBy);
    const positioned = (row: KvQueryRow) => ({ row, position: sortPosition(viewOfRow(row), plan.orderBy) });
    const merged = [...rows.map(positioned), ...evaluated.records.map((view) => positioned(view.row))].sort(
      (a, b) => compareSortPositions(a.position, b.position, directions),
    );
    const end = plan.limit === undefined ? undefined : plan.offset + plan.limit;
    return { rows: merged.slice(plan.offset, end).map((entry) => entry.row), total };
  };
  if (!readsJson && !counts) {
    return answer({
      query: <R>(statement: string | Statement, values?: unknown[]) => db.read<R>(statement, values),
    });
  }
  return db.readTransaction(answer, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
}
