import type {
  NormalizedMessageQuery,
  NormalizedPage,
  NormalizedSessionQuery,
  NormalizedToolCallQuery,
  SessionSortKey,
  ToolCallSortKey,
} from '../../src/agent/query-filters.js';
import { columnKey } from './postgres-column-keys.js';
import { COMMON_ROLES, COMMON_STATE, RARE_ROLE, RARE_STATE } from './postgres-schema.js';

/**
 * SQL for the cross-agent queries. Every value from the caller is a bound
 * parameter; column names and sort directions come from the fixed maps below,
 * chosen by the normalised (already validated) filters, never from user
 * input. Sort keys and their tie-breakers run in one direction, so one
 * composite index per filter serves both `asc` and `desc`.
 *
 * The only literals are fixed texts that name partial indexes' predicates
 * (see postgres-schema.ts): the boolean flags (`is_error` / `NOT is_error`:
 * the planner cannot prove `is_error = $1` true, so a parameter would keep a
 * generic plan off the partial index) and RARE_ROLE / RARE_STATE, added next
 * to the bound value when it is not a common one, so that the planner picks
 * the small index of rare values even in a generic plan that does not know
 * the value.
 */

/** A statement and its parameters. */
export interface BuiltQuery {
  text: string;
  values: unknown[];
}

const SESSION_SORT: Record<SessionSortKey, string> = {
  createdAt: 'created_at_ms',
  updatedAt: 'updated_at_ms',
  messageCount: 'message_count',
};

const TOOL_CALL_SORT: Record<ToolCallSortKey, string> = {
  createdAt: 'created_at_ms',
  updatedAt: 'updated_at_ms',
};

class Conditions {
  readonly parts: string[] = [];
  readonly values: unknown[] = [];

  add(sql: (param: string) => string, value: unknown): void {
    this.values.push(value);
    this.parts.push(sql(`$${this.values.length}`));
  }

  raw(sql: string): void {
    this.parts.push(sql);
  }

  /** `created_at_ms` bounds: `startDate`/`endDate` inclusive, `createdAfter`/`createdBefore` exclusive. */
  timeBounds(column: string, page: NormalizedPage): void {
    if (page.from) this.add((p) => `${column} ${page.from?.inclusive ? '>=' : '>'} ${p}`, page.from.ms);
    if (page.to) this.add((p) => `${column} ${page.to?.inclusive ? '<=' : '<'} ${p}`, page.to.ms);
  }

  where(): string {
    return this.parts.length === 0 ? '' : `WHERE ${this.parts.join(' AND ')}`;
  }

  /** LIMIT/OFFSET as parameters too. */
  page(page: NormalizedPage): string {
    this.values.push(page.limit, page.offset);
    return `LIMIT $${this.values.length - 1} OFFSET $${this.values.length}`;
  }
}

/**
 * The rows of a query, sorted and paged. With an agent filter the agent's rows
 * are found first, in a subquery (OFFSET 0 keeps it one) that the planner
 * prices without the limit: there the primary key (agent_id, position) is
 * always cheaper than walking a time-ordered index past every other agent's
 * rows, which, with the limit, it may prefer on a table without statistics.
 * One agent's rows are few enough to sort.
 */
function selectSorted(
  columns: string,
  table: string,
  c: Conditions,
  agentFiltered: boolean,
  orderBy: string,
  page: NormalizedPage,
): string {
  if (!agentFiltered)
    return `SELECT ${columns} FROM ${table} ${c.where()} ORDER BY ${orderBy} ${c.page(page)}`;
  return `SELECT ${columns} FROM (SELECT * FROM ${table} ${c.where()} OFFSET 0) AS one_agent
    ORDER BY ${orderBy} ${c.page(page)}`;
}

/** A boolean column's test as SQL text: one of two fixed strings, whatever `value` holds. */
function flag(column: 'is_error' | 'has_approval', value: boolean): string {
  return value ? column : `NOT ${column}`;
}

function direction(page: NormalizedPage): 'ASC' | 'DESC' {
  return page.order === 'asc' ? 'ASC' : 'DESC';
}

export function sessionsQuery(agents: string, query: NormalizedSessionQuery): BuiltQuery {
  const c = new Conditions();
  c.raw('info_json IS NOT NULL');
  if (query.agentId !== undefined) c.add((p) => `agent_id = ${p}`, query.agentId);
  if (query.templateId !== undefined) c.add((p) => `template_key = ${p}`, columnKey(query.templateId));
  if (query.userId !== undefined) c.add((p) => `user_key = ${p}`, columnKey(query.userId));
  c.timeBounds('created_at_ms', query);
  const dir = direction(query);
  // A row saved before schema 5 has no session_json until its next saveInfo:
  // its whole info comes instead (`toSessionInfo` reads either).
  const text = `SELECT agent_id, coalesce(session_json, info_json) AS session_json FROM ${agents} ${c.where()}
    ORDER BY ${SESSION_SORT[query.sortBy]} ${dir}, agent_id ${dir} ${c.page(query)}`;
  return { text, values: c.values };
}

export function messagesQuery(messages: string, query: NormalizedMessageQuery): BuiltQuery {
  const c = new Conditions();
  if (query.agentId !== undefined) c.add((p) => `agent_id = ${p}`, query.agentId);
  if (query.role !== undefined) {
    const role = columnKey(query.role);
    c.add((p) => `role_key = ${p}`, role);
    if (!COMMON_ROLES.includes(role)) c.raw(RARE_ROLE);
  }
  if (query.contentType !== undefined) {
    // `@>` (not `= ANY`) is what the GIN index on content_types serves.
    c.add((p) => `content_types @> ARRAY[${p}::text]`, columnKey(query.contentType));
  }
  c.timeBounds('created_at_ms', query);
  const dir = direction(query);
  const orderBy = `created_at_ms ${dir}, agent_id ${dir}, position ${dir}`;
  const text = selectSorted(
    'agent_id, message_json',
    messages,
    c,
    query.agentId !== undefined,
    orderBy,
    query,
  );
  return { text, values: c.values };
}

export function toolCallsQuery(toolCalls: string, query: NormalizedToolCallQuery): BuiltQuery {
  const c = new Conditions();
  if (query.agentId !== undefined) c.add((p) => `agent_id = ${p}`, query.agentId);
  if (query.toolName !== undefined) c.add((p) => `name_key = ${p}`, columnKey(query.toolName));
  if (query.state !== undefined) {
    const state = columnKey(query.state);
    c.add((p) => `state_key = ${p}`, state);
    if (state !== COMMON_STATE) c.raw(RARE_STATE);
  }
  if (query.isError !== undefined) c.raw(flag('is_error', query.isError));
  if (query.hasApproval !== undefined) c.raw(flag('has_approval', query.hasApproval));
  c.timeBounds('created_at_ms', query);
  const dir = direction(query);
  const orderBy = `${TOOL_CALL_SORT[query.sortBy]} ${dir}, agent_id ${dir}, tool_call_key ${dir}, position ${dir}`;
  const text = selectSorted(
    'agent_id, record_json',
    toolCalls,
    c,
    query.agentId !== undefined,
    orderBy,
    query,
  );
  return { text, values: c.values };
}
