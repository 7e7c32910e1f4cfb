import type {
  NormalizedMessageQuery,
  NormalizedPage,
  NormalizedSessionQuery,
  NormalizedToolCallQuery,
  SessionSortKey,
  ToolCallSortKey,
} from '../../src/agent/query-filters.js';
import { prefixUpperBound } from '../../src/strings.js';
import type { AgentChannel } from '../../src/types.js';
import type { MongoDocument } from './mongo-config.js';
import type { MongoIndexSpec } from './mongo-schema.js';

/**
 * Translation of the normalised query filters (`src/agent/query-filters.ts`) into
 * MongoDB filters, sorts and pages. Pure functions: the unit tests check every
 * filter combination and that each resulting filter + sort is served by an
 * index of `mongo-schema.ts`, without a server.
 *
 * Field names come only from the fixed maps here. Values are passed as BSON
 * values, never spliced into anything, and never used as field names.
 */

export type SortSpec = Record<string, 1 | -1>;

/**
 * One `find`: filter, sort, and the page. `AgentStore` answers `limit: 0`
 * itself, so `limit` is always > 0 here (MongoDB reads `limit(0)` as "no limit").
 */
export interface FindPlan {
  filter: MongoDocument;
  sort: SortSpec;
  skip: number;
  limit: number;
}

/** A range on epoch milliseconds from the page's time bounds, or `undefined` when unbounded. */
export function timeRange(page: Pick<NormalizedPage, 'from' | 'to'>): MongoDocument | undefined {
  const range: MongoDocument = {};
  if (page.from) range[page.from.inclusive ? '$gte' : '$gt'] = page.from.ms;
  if (page.to) range[page.to.inclusive ? '$lte' : '$lt'] = page.to.ms;
  return Object.keys(range).length > 0 ? range : undefined;
}

function direction(page: NormalizedPage): 1 | -1 {
  return page.order === 'asc' ? 1 : -1;
}

function plan(filter: MongoDocument, fields: readonly string[], page: NormalizedPage): FindPlan {
  const dir = direction(page);
  const sort: SortSpec = {};
  for (const field of fields) sort[field] = dir;
  return { filter, sort, skip: page.offset, limit: page.limit };
}

/** The `infos` field each session sort key reads. */
export const SESSION_SORT_FIELDS: Readonly<Record<SessionSortKey, string>> = {
  createdAt: 'createdAtMs',
  updatedAt: 'updatedAt',
  messageCount: 'messageCount',
};

/** `querySessions` over `<prefix>infos`; ties broken by agent id (`_id`) in the same direction. */
export function sessionQueryPlan(query: NormalizedSessionQuery): FindPlan {
  const filter: MongoDocument = {};
  if (query.agentId !== undefined) filter._id = query.agentId;
  if (query.templateId !== undefined) filter.templateId = query.templateId;
  if (query.userId !== undefined) filter.userId = query.userId;
  const created = timeRange(query);
  if (created) filter.createdAtMs = created;
  return plan(filter, [SESSION_SORT_FIELDS[query.sortBy], '_id'], query);
}

/**
 * `queryMessages` over `<prefix>messages`: first-saved time, then agent id,
 * then position. With an agent id filter the agent id is constant, so it is
 * left out of the sort and the `(agentId, createdAt, index)` index serves it.
 */
export function messageQueryPlan(query: NormalizedMessageQuery): FindPlan {
  const filter: MongoDocument = {};
  if (query.agentId !== undefined) filter.agentId = query.agentId;
  if (query.role !== undefined) filter.role = query.role;
  // Equality on an array field matches documents whose array holds the value.
  if (query.contentType !== undefined) filter.contentTypes = query.contentType;
  const created = timeRange(query);
  if (created) filter.createdAt = created;
  const fields = query.agentId !== undefined ? ['createdAt', 'index'] : ['createdAt', 'agentId', 'index'];
  return plan(filter, fields, query);
}

/** The `tool_calls` field each tool-call sort key reads. */
export const TOOL_CALL_SORT_FIELDS: Readonly<Record<ToolCallSortKey, string>> = {
  createdAt: 'createdAt',
  updatedAt: 'updatedAt',
};

/** `queryToolCalls` over `<prefix>tool_calls`: the sort key, then agent id, tool call id, position. */
export function toolCallQueryPlan(query: NormalizedToolCallQuery): FindPlan {
  const filter: MongoDocument = {};
  if (query.agentId !== undefined) filter.agentId = query.agentId;
  if (query.toolName !== undefined) filter.name = query.toolName;
  if (query.state !== undefined) filter.state = query.state;
  if (query.isError !== undefined) filter.isError = query.isError;
  if (query.hasApproval !== undefined) filter.hasApproval = query.hasApproval;
  const created = timeRange(query);
  if (created) filter.createdAt = created;
  const key = TOOL_CALL_SORT_FIELDS[query.sortBy];
  const fields =
    query.agentId !== undefined ? [key, 'toolCallId', 'index'] : [key, 'agentId', 'toolCallId', 'index'];
  return plan(filter, fields, query);
}

/** Options of one page of `readEvents`. */
export interface EventPageOptions {
  /** Keeps entries whose `bookmark.seq` is greater than this. */
  sinceSeq?: number;
  channel?: AgentChannel | string;
}

/** The sort of `readEvents`: insertion order, never `bookmark.seq`. */
export const EVENT_SORT: SortSpec = { seq: 1 };

/** One keyset page of an agent's events: everything after `afterSeq`, with the reader's filters. */
export function eventPageFilter(
  agentId: string,
  afterSeq: number,
  options: EventPageOptions = {},
): MongoDocument {
  const filter: MongoDocument = { agentId, seq: { $gt: afterSeq } };
  if (options.sinceSeq !== undefined) filter.bookmarkSeq = { $gt: options.sinceSeq };
  if (options.channel !== undefined) filter.channel = options.channel;
  return filter;
}

/**
 * `prefixUpperBound` (src/strings.ts) is the smallest string greater
 * than every string that starts with a prefix, in code point order. MongoDB
 * compares strings as UTF-8 bytes ("simple binary comparison" when no
 * collation is set, the manual's "Comparison/Sort Order"), and UTF-8 byte
 * order is code point order, so `[prefix, upper)` is exactly the set of
 * strings with that prefix. (`prefix + '\uffff'` would not do: it misses
 * prefixed strings that continue with a character above U+FFFF.)
 */
export { prefixUpperBound };

/**
 * The filter of `list(prefix)` on `<prefix>agents._id`: a range, so the prefix
 * matches literally (no regex, so `.`, `*`, `%`, `_` are ordinary characters)
 * and the `_id` index serves it. `AgentStore` passes only prefixes an id can
 * start with (no NUL, no lone surrogate), so the range is exact.
 */
export function agentIdPrefixFilter(prefix: string | undefined): MongoDocument {
  if (prefix === undefined || prefix === '') return {};
  return codePointRange(prefix, prefixUpperBound(prefix));
}

function codePointRange(lower: string, upper: string | undefined): MongoDocument {
  return { _id: upper === undefined ? { $gte: lower } : { $gte: lower, $lt: upper } };
}

/** `aggregateStats`: tool calls of one agent grouped by (name, state), counted on the server. */
export function toolCallStatsPipeline(agentId: string): MongoDocument[] {
  return [
    { $match: { agentId } },
    { $group: { _id: { name: '$name', state: '$state' }, count: { $sum: 1 } } },
  ];
}

/** Folds the (name, state) groups into the per-name and per-state counts of `AgentStats`. */
export function toolCallStatsFromGroups(groups: readonly MongoDocument[]): {
  toolCallsByName: Record<string, number>;
  toolCallsByState: Record<string, number>;
} {
  const byName = new Map<string, number>();
  const byState = new Map<string, number>();
  for (const group of groups) {
    const key = group._id as { name?: unknown; state?: unknown } | undefined;
    const count = Number(group.count ?? 0);
    const name = String(key?.name ?? '');
    const state = String(key?.state ?? '');
    byName.set(name, (byName.get(name) ?? 0) + count);
    byState.set(state, (byState.get(state) ?? 0) + count);
  }
  // fromEntries defines own properties, so a tool named "__proto__" is counted, not a prototype change.
  const sorted = (map: Map<string, number>) =>
    Object.fromEntries([...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { toolCallsByName: sorted(byName), toolCallsByState: sorted(byState) };
}

/** Fields a filter pins to one value (plain equality, not an operator document). */
export function equalityFields(filter: MongoDocument): Set<string> {
  const fields = new Set<string>();
  for (const [field, value] of Object.entries(filter)) {
    const isOperator =
      typeof value === 'object' && value !== null && Object.keys(value).some((key) => key.startsWith('$'));
    if (!isOperator) fields.add(field);
  }
  return fields;
}

/**
 * The index that serves a filter + sort without an in-memory sort, if any:
 * its key starts with fields the filter pins by equality, continues with the
 * sort fields in order, all in the sort's direction or all reversed (an index
 * is walked either way). Among several, the one with the most pinned fields
 * in its prefix wins, as it reads the fewest entries. Used by the tests to
 * prove each query shape is index-backed; MongoDB's planner makes the actual
 * choice at run time.
 */
export function findCoveringIndex(
  indexes: readonly MongoIndexSpec[],
  filter: MongoDocument,
  sort: SortSpec,
): { index: MongoIndexSpec; pinnedPrefix: string[] } | undefined {
  const pinned = equalityFields(filter);
  const sortFields = Object.entries(sort);
  let best: { index: MongoIndexSpec; pinnedPrefix: string[] } | undefined;
  for (const index of indexes) {
    const keys = Object.entries(index.key);
    let prefix = 0;
    while (prefix < keys.length && pinned.has(keys[prefix]?.[0] ?? '')) prefix++;
    // Try every split: the sort may start after any number of pinned fields.
    for (let start = 0; start <= prefix; start++) {
      const rest = keys.slice(start, start + sortFields.length);
      if (rest.length !== sortFields.length) continue;
      const sameFields = rest.every(([field], i) => field === sortFields[i]?.[0]);
      if (!sameFields) continue;
      const relation = rest.map(([, dir], i) => dir === sortFields[i]?.[1]);
      if (!relation.every((same) => same === relation[0])) continue;
      const pinnedPrefix = keys.slice(0, start).map(([field]) => field);
      if (!best || pinnedPrefix.length > best.pinnedPrefix.length) best = { index, pinnedPrefix };
    }
  }
  return best;
}
