import type { KvKeyRef, KvQueryRow, KvRecordRow } from '../../src/kv/kv-backend.js';
import {
  KV_COLUMN_TYPES,
  type KvColumn,
  type KvPredicate,
  type KvQueryPlan,
  planDocuments,
} from '../../src/kv/kv-query.js';
import { evaluatePlan } from '../../src/kv/kv-query-eval.js';
import { viewOfRow } from '../../src/kv/kv-records.js';
import { prefixUpperBound } from '../../src/strings.js';
import type { MongoCollection, MongoDocument, MongoSession } from './mongo-config.js';
import { withSession } from './mongo-connection.js';
import { type CurrentRow, fromKvRecordDocument, refKey } from './mongo-kv-documents.js';

/**
 * The KV query DSL as MongoDB filters. Queries narrow the rows on the server
 * (instance, namespace, liveness, and the conditions on columns that
 * translate exactly), then the shared plain evaluator runs over what remains,
 * so every answer is the evaluator's own; a condition on `value.*` /
 * `metadata.*` is evaluated in this process.
 */

/** Rows visible at `now`: no expiry, or one still ahead (`{expiresAt: null}` also matches a missing field). */
export function kvLiveFilter(now: number): MongoDocument {
  return { $or: [{ expiresAt: null }, { expiresAt: { $gt: now } }] };
}

/** The rows of these keys, grouped by namespace so each group is one index range. */
export function kvKeysFilter(refs: readonly KvKeyRef[]): MongoDocument {
  const byNamespace = new Map<string, string[]>();
  for (const ref of refs)
    byNamespace.set(ref.namespace, [...(byNamespace.get(ref.namespace) ?? []), ref.key]);
  return { $or: [...byNamespace].map(([namespace, keys]) => ({ namespace, key: { $in: keys } })) };
}

/** The JavaScript type of a column's operands in a plan (times are epoch ms). */
const operandType = (column: KvColumn) => (KV_COLUMN_TYPES[column] === 'string' ? 'string' : 'number');

const RANGE_OPERATORS = { gt: '$gt', gte: '$gte', lt: '$lt', lte: '$lte' } as const;

/** One column condition as an exact MongoDB condition, or `undefined` when it has none. */
function columnCondition(predicate: KvPredicate): MongoDocument | undefined {
  if (predicate.kind === 'in') {
    if (predicate.field.kind !== 'column') return undefined;
    const kind = operandType(predicate.field.column);
    if (!predicate.operands.every((operand) => typeof operand === kind)) return undefined;
    return { [predicate.field.column]: { [predicate.negated ? '$nin' : '$in']: predicate.operands } };
  }
  if (predicate.kind !== 'compare' || predicate.field.kind !== 'column') return undefined;
  const { column } = predicate.field;
  const { operator, operand } = predicate;
  if (typeof operand !== operandType(column)) return undefined;
  if (operator === 'eq') return { [column]: operand };
  if (operator === 'neq') return { [column]: { $ne: operand } };
  if (operator in RANGE_OPERATORS) {
    return { [column]: { [RANGE_OPERATORS[operator as keyof typeof RANGE_OPERATORS]]: operand } };
  }
  if (operator === 'startsWith' && typeof operand === 'string') {
    // An empty prefix gives no upper bound: `$gte: ''` keeps every string, as startsWith('') does.
    const upper = prefixUpperBound(operand);
    return { [column]: upper === undefined ? { $gte: operand } : { $gte: operand, $lt: upper } };
  }
  return undefined;
}

/**
 * The conditions of a query's top-level conjunction that are on columns and
 * translate exactly (equality, ranges, `in`, `startsWith` as a range), as
 * MongoDB conditions ANDed together: a narrowing that never drops a record
 * the full predicate keeps. Everything else is left to the evaluator.
 */
export function kvColumnPrefilter(where: KvPredicate): MongoDocument[] {
  if (where.kind !== 'and') {
    const single = columnCondition(where);
    return single ? [single] : [];
  }
  return where.items.flatMap((item) => kvColumnPrefilter(item));
}

/** Keys asked for by one `find`, and documents the driver fetches per batch. */
const MAX_BATCH_FIND = 1000;

/** One incarnation of one instance: what every read of its records is scoped to. */
export interface KvScope {
  instanceId: string;
  incarnation: string;
}

/** The stored rows of `refs` (live at `now`, or all when `now` is undefined), by namespace and key. */
export async function readKvRows(
  records: MongoCollection,
  scope: KvScope,
  refs: readonly KvKeyRef[],
  now: number | undefined,
  session?: MongoSession,
): Promise<Map<string, CurrentRow>> {
  const found = new Map<string, CurrentRow>();
  for (let start = 0; start < refs.length; start += MAX_BATCH_FIND) {
    const conditions: MongoDocument[] = [
      { ...scope },
      kvKeysFilter(refs.slice(start, start + MAX_BATCH_FIND)),
    ];
    if (now !== undefined) conditions.push(kvLiveFilter(now));
    const docs = await records.find({ $and: conditions }, withSession(session)).toArray();
    for (const doc of docs) {
      found.set(refKey(String(doc.namespace), String(doc.key)), {
        row: fromKvRecordDocument(doc) as KvRecordRow,
        _id: doc._id,
        rev: String(doc.rev),
        doc,
      });
    }
  }
  return found;
}

/**
 * Runs a query plan over one incarnation's records live at `now`: the
 * server narrows, the shared evaluator decides, and the documents the
 * evaluation did not need but the caller wants are fetched for the page only.
 */
export async function runKvQuery(
  records: MongoCollection,
  plan: KvQueryPlan,
  incarnation: string,
  now: number,
): Promise<{ rows: KvQueryRow[]; total: number }> {
  const scope: MongoDocument = { instanceId: plan.instanceId, incarnation };
  if (plan.namespace !== undefined) scope.namespace = plan.namespace;
  const read = planDocuments(plan);
  const projection: MongoDocument = { rev: 0, incarnation: 0, batch: 0 };
  if (!read.value) projection.value = 0;
  if (!read.metadata) projection.metadata = 0;
  const cursor = records
    .find({ $and: [scope, kvLiveFilter(now), ...kvColumnPrefilter(plan.where)] }, { projection })
    .batchSize(MAX_BATCH_FIND);
  const views: Array<ReturnType<typeof viewOfRow> & { row: KvQueryRow }> = [];
  for await (const doc of cursor) {
    const row = fromKvRecordDocument(doc);
    views.push({ ...viewOfRow(row, { backend: 'mongo', operation: 'kv.query' }), row });
  }
  const result = evaluatePlan(views, plan);
  const rows = result.records.map((view) => view.row);
  const missing = (plan.needsValue && !read.value) || (plan.needsMetadata && !read.metadata);
  if (missing && rows.length > 0) {
    const full = await readKvRows(records, { instanceId: plan.instanceId, incarnation }, rows, undefined);
    for (const row of rows) {
      const stored = full.get(refKey(row.namespace, row.key))?.row;
      if (plan.needsValue && stored) row.value = stored.value;
      if (plan.needsMetadata && stored) row.metadata = stored.metadata;
    }
  }
  return { rows, total: result.total };
}
