import type { KvQueryRow, KvRecordRow } from '../../src/kv/kv-backend.js';
import {
  type KvFieldRef,
  type KvPredicate,
  type KvQueryPlan,
  type KvScalar,
  type KvSortKey,
  planReadsJson,
} from '../../src/kv/kv-query.js';
import {
  compareSortPositions,
  evaluatePlan,
  sortPosition,
  vectorDirections,
} from '../../src/kv/kv-query-eval.js';
import { viewOfRow } from '../../src/kv/kv-records.js';
import { prefixUpperBound } from '../../src/strings.js';
import type { PostgresConnection, Queryable, Statement } from './postgres-connection.js';
import { type buildKvStatements, kvRecordsTable, RECORD_COLUMNS } from './postgres-kv-statements.js';

/**
 * The KV query DSL (a `KvQueryPlan`) as SQL over `kode_kv_records`.
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

const COLUMN_SQL = {
  key: 'r.key',
  namespace: 'r.namespace',
  version: 'r.version',
  createdAt: 'r.created_at',
  updatedAt: 'r.updated_at',
} as const;

const ORDERING: Record<string, string> = { gt: '>', gte: '>=', lt: '<', lte: '<=' };

/** The jsonb of a field: each path segment a bound text parameter, walked with `->` (object members only). */
function jsonExpression(field: Extract<KvFieldRef, { kind: 'json' }>, params: Parameters): string {
  const document = field.document === 'value' ? 'd.v' : 'd.m';
  return field.path.reduce((sql, segment) => `(${sql} -> ${params.add(segment, '::text')})`, document);
}

const asNumber = (x: string) => `(CASE WHEN jsonb_typeof(${x}) = 'number' THEN (${x})::numeric END)`;
const asText = (x: string) => `(CASE WHEN jsonb_typeof(${x}) = 'string' THEN ${x} #>> '{}' END)`;

function startsWith(text: string, prefix: string, params: Parameters): string {
  const upper = prefixUpperBound(prefix);
  const low = `${text} >= ${params.add(prefix, '::text')} COLLATE "C"`;
  return upper === undefined ? low : `(${low} AND ${text} < ${params.add(upper, '::text')} COLLATE "C")`;
}

function endsWith(text: string, suffix: string, params: Parameters): string {
  if (suffix === '') return `${text} IS NOT NULL`;
  const bound = params.add(suffix, '::text');
  return `right(${text}, char_length(${bound})) = ${bound}`;
}

function compileJsonCompare(
  x: string,
  predicate: Extract<KvPredicate, { kind: 'compare' }>,
  params: Parameters,
): string {
  const { operator, operand } = predicate;
  const json = (value: KvScalar) => params.add(JSON.stringify(value), '::jsonb');
  switch (operator) {
    case 'eq':
      return `${x} = ${json(operand)}`;
    case 'neq':
      return `(${x} IS NOT NULL AND ${x} <> ${json(operand)})`;
    case 'contains': {
      const inArray = `EXISTS (SELECT 1 FROM jsonb_array_elements(${x}) e(v) WHERE e.v = ${json(operand)})`;
      const inText =
        typeof operand === 'string'
          ? `WHEN 'string' THEN strpos(${x} #>> '{}', ${params.add(operand, '::text')}) > 0`
          : '';
      return `(CASE jsonb_typeof(${x}) ${inText} WHEN 'array' THEN ${inArray} ELSE false END)`;
    }
    case 'startsWith':
      return startsWith(asText(x), operand as string, params);
    case 'endsWith':
      return endsWith(asText(x), operand as string, params);
    default:
      return typeof operand === 'number'
        ? `${asNumber(x)} ${ORDERING[operator]} ${params.add(operand, '::numeric')}`
        : `${asText(x)} COLLATE "C" ${ORDERING[operator]} ${params.add(operand, '::text')}`;
  }
}

function compileColumnCompare(
  predicate: Extract<KvPredicate, { kind: 'compare' }>,
  params: Parameters,
): string {
  const field = predicate.field as Extract<KvFieldRef, { kind: 'column' }>;
  const column = COLUMN_SQL[field.column];
  const { operator, operand } = predicate;
  const bound = () => params.add(operand, typeof operand === 'number' ? '::numeric' : '::text');
  switch (operator) {
    case 'eq':
      return `${column} = ${bound()}`;
    case 'neq':
      return `${column} <> ${bound()}`;
    case 'contains':
      return `strpos(${column}, ${bound()}) > 0`;
    case 'startsWith':
      return startsWith(column, operand as string, params);
    case 'endsWith':
      return endsWith(column, operand as string, params);
    default:
      return `${column} ${ORDERING[operator]} ${bound()}`;
  }
}

/** Translates a predicate; every leaf is true or false (never NULL), so NOT and OR mean what they say. */
function compilePredicate(predicate: KvPredicate, params: Parameters): string {
  switch (predicate.kind) {
    case 'and':
    case 'or': {
      if (predicate.items.length === 0) return predicate.kind === 'and' ? 'true' : 'false';
      const joiner = predicate.kind === 'and' ? ' AND ' : ' OR ';
      return `(${predicate.items.map((item) => compilePredicate(item, params)).join(joiner)})`;
    }
    case 'exists': {
      if (predicate.field.kind === 'column') return predicate.exists ? 'true' : 'false';
      return `(${jsonExpression(predicate.field, params)} IS ${predicate.exists ? 'NOT ' : ''}NULL)`;
    }
    case 'in': {
      const { field, negated, operands } = predicate;
      if (field.kind === 'column') {
        const numeric = field.column !== 'key' && field.column !== 'namespace';
        const list = params.add(operands, numeric ? '::numeric[]' : '::text[]');
        return `${negated ? 'NOT ' : ''}(${COLUMN_SQL[field.column]} = ANY(${list}))`;
      }
      const x = jsonExpression(field, params);
      const list = params.add(
        operands.map((operand) => JSON.stringify(operand)),
        '::jsonb[]',
      );
      return `COALESCE(${x} IS NOT NULL AND ${negated ? 'NOT ' : ''}(${x} = ANY(${list})), false)`;
    }
    case 'compare':
      // Columns are NOT NULL, so their comparisons are never NULL: left bare, an index can serve them.
      if (predicate.field.kind === 'column') return `(${compileColumnCompare(predicate, params)})`;
      return `COALESCE(${compileJsonCompare(jsonExpression(predicate.field, params), predicate, params)}, false)`;
  }
}

interface SortComponent {
  sql: string;
  kind: 'number' | 'text';
}

/** The SQL of each sort-vector component, in the order of `sortPosition`. */
function sortComponents(orderBy: KvSortKey[], params: Parameters): SortComponent[] {
  return orderBy.flatMap(({ field }): SortComponent[] => {
    if (field.kind === 'column') {
      const text = field.column === 'key' || field.column === 'namespace';
      return [{ sql: COLUMN_SQL[field.column], kind: text ? 'text' : 'number' }];
    }
    const x = jsonExpression(field, params);
    return [
      {
        sql: `(CASE jsonb_typeof(${x}) WHEN 'null' THEN 1 WHEN 'boolean' THEN (CASE WHEN ${x} = 'true'::jsonb THEN 3 ELSE 2 END)
          WHEN 'number' THEN 4 WHEN 'string' THEN 5 WHEN 'array' THEN 6 WHEN 'object' THEN 7 ELSE 0 END)`,
        kind: 'number',
      },
      { sql: `COALESCE(${asNumber(x)}, 0)`, kind: 'number' },
      { sql: `COALESCE(${asText(x)}, '') COLLATE "C"`, kind: 'text' },
    ];
  });
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what this looks for.
const LONE_OR_NUL = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * `expression op value` for a cursor component. A text position taken from a
 * row jsonb could not read (NUL or a lone surrogate in it) cannot be bound
 * as text; but the SQL side only holds strings without either, and against
 * those `s > c` is exactly `s >= c'` and `s < c` is `s < c'`, where c' is c
 * cut at the first such character, which is replaced by the next character
 * a string can hold there (U+0001 after NUL, U+E000 after a surrogate).
 */
function cursorTerm(
  component: SortComponent,
  op: '=' | '<' | '>',
  value: number | string,
  params: Parameters,
): string {
  if (component.kind === 'number') return `${component.sql} ${op} ${params.add(value, '::numeric')}`;
  let text = String(value);
  const odd = LONE_OR_NUL.exec(text);
  if (!odd) return `${component.sql} ${op} ${params.add(text, '::text')}`;
  if (op === '=') return 'false';
  text = text.slice(0, odd.index) + (odd[0] === '\u0000' ? '\u0001' : '\uE000');
  return `${component.sql} ${op === '>' ? '>=' : '<'} ${params.add(text, '::text')}`;
}

function afterPosition(plan: KvQueryPlan, params: Parameters): string {
  const after = plan.after;
  if (!after) return 'true';
  const components = [
    ...sortComponents(plan.orderBy, params),
    { sql: 'r.key', kind: 'text' as const },
    { sql: 'r.namespace', kind: 'text' as const },
  ];
  const directions = [...vectorDirections(plan.orderBy), 'asc', 'asc'];
  const values = [...after.vector, after.key, after.namespace];
  const alternatives: string[] = [];
  for (let i = 0; i < components.length; i++) {
    const terms: string[] = [];
    for (let j = 0; j < i; j++)
      terms.push(cursorTerm(components[j] as SortComponent, '=', values[j] as never, params));
    const op = directions[i] === 'desc' ? '<' : '>';
    terms.push(cursorTerm(components[i] as SortComponent, op, values[i] as never, params));
    alternatives.push(`(${terms.join(' AND ')})`);
  }
  return `(${alternatives.join(' OR ')})`;
}

function usesDocument(plan: KvQueryPlan, document: 'value' | 'metadata'): boolean {
  const inPredicate = (p: KvPredicate): boolean =>
    p.kind === 'and' || p.kind === 'or'
      ? p.items.some(inPredicate)
      : p.field.kind === 'json' && p.field.document === document;
  return (
    inPredicate(plan.where) ||
    plan.orderBy.some((key) => key.field.kind === 'json' && key.field.document === document)
  );
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
  const readsJson = planReadsJson(plan);
  const params = new Parameters();
  const scope = [`r.instance_id = ${params.add(plan.instanceId, '::text')}`];
  if (plan.namespace !== undefined) scope.push(`r.namespace = ${params.add(plan.namespace, '::text')}`);
  scope.push(`(r.expires_at IS NULL OR r.expires_at > ${params.add(now, '::bigint')})`);
  const scopeValues = params.values.length;
  // Rows jsonb cannot read are left to the plain evaluator (below); the
  // CASE keeps the cast from ever seeing them, whatever order PostgreSQL
  // evaluates the conditions in.
  const documents = [
    ...(usesDocument(plan, 'value') ? ['CASE WHEN r.jsonb_ok THEN r.value::jsonb END AS v'] : []),
    ...(usesDocument(plan, 'metadata') ? ['CASE WHEN r.jsonb_ok THEN r.metadata::jsonb END AS m'] : []),
  ];
  // OFFSET 0 keeps the subquery from being inlined: each row's text is parsed once, not per reference.
  const from = `${kvRecordsTable(db)} r${documents.length > 0 ? ` CROSS JOIN LATERAL (SELECT ${documents.join(', ')} OFFSET 0) d` : ''}`;
  const filter = [...scope, ...(readsJson ? ['r.jsonb_ok'] : []), compilePredicate(plan.where, params)].join(
    ' AND ',
  );
  // The count statement binds exactly the filter's parameters (PostgreSQL refuses unused ones).
  const filterValues = [...params.values];
  const directions = vectorDirections(plan.orderBy);
  const order = [
    ...sortComponents(plan.orderBy, params).map(
      (component, i) => `${component.sql} ${directions[i] === 'desc' ? 'DESC' : 'ASC'}`,
    ),
    'r.key ASC',
    'r.namespace ASC',
  ].join(', ');
  const columns = [
    RECORD_COLUMNS,
    ...(plan.needsValue ? ['r.value'] : []),
    ...(plan.needsMetadata ? ['r.metadata'] : []),
  ].join(', ');
  const after = afterPosition(plan, params);

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
      `SELECT ${columns} FROM ${from} WHERE ${filter} AND ${after} ORDER BY ${order} ${limitSql}`,
      pageValues,
    );
    const [counted] = counts
      ? await tx.query<{ n: number }>(`SELECT count(*) AS n FROM ${from} WHERE ${filter}`, filterValues)
      : [{ n: rows.length }];
    // evaluatePlan's total ignores the cursor, like the SQL count.
    const total = Number(counted?.n ?? 0) + evaluated.total;
    if (total === 0 && !(await tx.query(sql.instanceExists, [plan.instanceId])).length) return undefined;
    if (!merging) return { rows, total };
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
