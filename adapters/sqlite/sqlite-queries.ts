import type {
  NormalizedMessageQuery,
  NormalizedPage,
  NormalizedSessionQuery,
  NormalizedToolCallQuery,
  SessionSortKey,
  TimeBound,
  ToolCallSortKey,
} from '../../src/agent/query-filters.js';
import { prefixUpperBound } from '../../src/strings.js';
import type { ReadEventsOptions } from '../../src/types.js';
import { LIVE_AGENT } from './sqlite-registry.js';

/**
 * SQL for the cross-agent queries, built from filters that
 * `normalize*Filters` has already validated. Only fixed fragments from this
 * file are spliced into the SQL (column names from the maps below, `ASC` /
 * `DESC`); every value is bound. The text depends only on which filters are
 * present, so the connection's statement cache serves each combination with
 * one prepared statement.
 */
export interface BuiltQuery {
  sql: string;
  parameters: unknown[];
}

const SESSION_SORT_COLUMN: Record<SessionSortKey, string> = {
  createdAt: 'created_at_ms',
  updatedAt: 'updated_at_ms',
  messageCount: 'message_count',
};

const TOOL_CALL_SORT_COLUMN: Record<ToolCallSortKey, string> = {
  createdAt: 'created_at_ms',
  updatedAt: 'updated_at_ms',
};

class WhereClause {
  private readonly conditions: string[] = [];
  readonly parameters: unknown[] = [];

  equals(column: string, value: unknown): this {
    if (value !== undefined) {
      this.conditions.push(`${column} = ?`);
      this.parameters.push(value);
    }
    return this;
  }

  /**
   * A boolean column compared with a literal 0 or 1, not a bound value:
   * SQLite uses a partial index (`WHERE is_error = 1`) only when the query
   * states its condition in the SQL text.
   */
  flag(column: string, value: boolean | undefined): this {
    if (value !== undefined) this.conditions.push(`${column} = ${value ? 1 : 0}`);
    return this;
  }

  within(column: string, page: Pick<NormalizedPage, 'from' | 'to'>): this {
    const bound = (limit: TimeBound | undefined, strict: string, inclusive: string) => {
      if (!limit) return;
      this.conditions.push(`${column} ${limit.inclusive ? inclusive : strict} ?`);
      this.parameters.push(limit.ms);
    };
    bound(page.from, '>', '>=');
    bound(page.to, '<', '<=');
    return this;
  }

  toString(): string {
    return this.conditions.length === 0 ? '' : ` WHERE ${this.conditions.join(' AND ')}`;
  }
}

function direction(page: NormalizedPage): 'ASC' | 'DESC' {
  return page.order === 'asc' ? 'ASC' : 'DESC';
}

function paged(sql: string, where: WhereClause, page: NormalizedPage): BuiltQuery {
  return { sql: `${sql} LIMIT ? OFFSET ?`, parameters: [...where.parameters, page.limit, page.offset] };
}

/** Sessions: agents with saved info, sorted by the chosen key, ties broken by agent id in the same direction. */
export function sessionQuery(query: NormalizedSessionQuery): BuiltQuery {
  const where = new WhereClause()
    .equals('agent_id', query.agentId)
    .equals('template_id', query.templateId)
    .equals('user_id', query.userId)
    .within('created_at_ms', query);
  const dir = direction(query);
  const sort = SESSION_SORT_COLUMN[query.sortBy];
  return paged(
    `SELECT agent_id, coalesce(session_json, ${sessionFromInfo('info_json')}) AS session_json FROM agent_info${where} ` +
      `ORDER BY ${sort} ${dir}, agent_id ${dir}`,
    where,
    query,
  );
}

/** The info fields a session is made of (`toSessionInfo`); `breakpoint` is added only when present. */
const SESSION_FIELDS = ['templateId', 'createdAt', 'messageCount', 'lastSfpIndex'] as const;

/**
 * SQL for the session of an info saved before `agent_info.session_json`
 * existed (schema 6; every saveInfo since stores it): a JSON object of
 * `SESSION_FIELDS` (null where the info lacks one, which `toSessionInfo`
 * reads as absent) and `breakpoint` when the info has one. `coalesce` only
 * evaluates it for such rows. Not `coalesce(session_json, info_json)`: an
 * agent that is never saved again (an archive of finished sessions) would
 * then have its whole info, the agent's whole configuration (a kilobyte or
 * more), parsed in JavaScript on every page, where SQLite parses it once per
 * row (its JSON functions share one parse of the same text) in a fraction
 * of that. Each field keeps its JSON value (`->`), so it reads back exactly
 * as from the whole info. A text SQLite cannot read (damaged, or too deep
 * for its JSON functions) comes whole, for the store to decode as before (a
 * damaged one then fails as CorruptDataError).
 */
function sessionFromInfo(column: string): string {
  const fields = (names: readonly string[]) =>
    `json_object(${names.map((name) => `'${name}', ${column} -> '$.${name}'`).join(', ')})`;
  return (
    `CASE WHEN NOT json_valid(${column}) THEN ${column} ` +
    `WHEN json_type(${column}, '$.breakpoint') IS NULL THEN ${fields(SESSION_FIELDS)} ` +
    `ELSE ${fields([...SESSION_FIELDS, 'breakpoint'])} END`
  );
}

/**
 * Messages by the time they were first saved, then agent id and position.
 * A content-type filter reads the `message_content_types` index table and
 * joins the messages it points at.
 */
export function messageQuery(query: NormalizedMessageQuery): BuiltQuery {
  const dir = direction(query);
  if (query.contentType === undefined) {
    const where = new WhereClause()
      .equals('agent_id', query.agentId)
      .equals('role', query.role)
      .within('created_at_ms', query);
    return paged(
      `SELECT message_json FROM messages${where} ` +
        `ORDER BY created_at_ms ${dir}, agent_id ${dir}, position ${dir}`,
      where,
      query,
    );
  }
  const where = new WhereClause()
    .equals('t.content_type', query.contentType)
    .equals('t.agent_id', query.agentId)
    .equals('m.role', query.role)
    .within('t.created_at_ms', query);
  return paged(
    'SELECT m.message_json FROM message_content_types AS t ' +
      `JOIN messages AS m ON m.agent_id = t.agent_id AND m.position = t.position${where} ` +
      `ORDER BY t.created_at_ms ${dir}, t.agent_id ${dir}, t.position ${dir}`,
    where,
    query,
  );
}

/** Tool-call records by `createdAt` or `updatedAt`, then agent id and tool-call id. */
export function toolCallQuery(query: NormalizedToolCallQuery): BuiltQuery {
  const where = new WhereClause()
    .equals('agent_id', query.agentId)
    .equals('name', query.toolName)
    .equals('state', query.state)
    .flag('is_error', query.isError)
    .flag('has_approval', query.hasApproval)
    .within('created_at_ms', query);
  const dir = direction(query);
  const sort = TOOL_CALL_SORT_COLUMN[query.sortBy];
  return paged(
    `SELECT record_json FROM tool_calls${where} ORDER BY ${sort} ${dir}, agent_id ${dir}, call_id ${dir}`,
    where,
    query,
  );
}

/** Agent ids starting with `prefix`, in code-point order. */
export function listAgentsQuery(prefix = ''): BuiltQuery {
  const upper = prefixUpperBound(prefix);
  // Tombstones come too (`deleted` = 1): hybrid mode's list leaves out their files.
  const columns = `agent_id, NOT (${LIVE_AGENT}) AS deleted`;
  return upper === undefined
    ? { sql: `SELECT ${columns} FROM agents WHERE agent_id >= ? ORDER BY agent_id`, parameters: [prefix] }
    : {
        sql: `SELECT ${columns} FROM agents WHERE agent_id >= ? AND agent_id < ? ORDER BY agent_id`,
        parameters: [prefix, upper],
      };
}

/** One page of an agent's events after row `afterId`, in append (rowid) order: keyset paging. */
export function eventPageQuery(
  agentId: string,
  afterId: number,
  filter: ReadEventsOptions,
  pageSize: number,
  asBytes: boolean,
): BuiltQuery {
  const where = new WhereClause().equals('agent_id', agentId).equals('channel', filter.channel);
  const parameters = [...where.parameters];
  // As a blob, the text comes as its stored bytes (a Buffer): no string to
  // make and encode again for the page (src/agent/paged-iterable.ts).
  const json = asBytes ? 'CAST(timeline_json AS BLOB)' : 'timeline_json';
  let sql = `SELECT id, ${json} AS timeline_json FROM events${where} AND id > ?`;
  parameters.push(afterId);
  if (filter.since !== undefined) {
    sql += ' AND seq > ?';
    parameters.push(filter.since.seq);
  }
  return { sql: `${sql} ORDER BY id LIMIT ?`, parameters: [...parameters, pageSize] };
}
