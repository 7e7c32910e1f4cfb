import { QueryError } from '../errors.js';
import type {
  MessageFilters,
  PageFilters,
  SessionFilters,
  TimeInput,
  ToolCallFilters,
  ToolCallState,
} from '../types.js';

/**
 * Query filters reduced to one canonical form that every backend translates
 * the same way. Validation happens here, once: an unknown `sortBy` or
 * `sortOrder`, a negative or fractional `limit`/`offset`, or an unreadable
 * date is a `QueryError`. Backends only ever bind the values and pick column
 * names from the fixed maps below, never from user input.
 */

export const DEFAULT_QUERY_LIMIT = 100;

export type SortOrder = 'asc' | 'desc';

/** A bound on creation time, in epoch milliseconds. */
export interface TimeBound {
  ms: number;
  inclusive: boolean;
}

export interface NormalizedPage {
  limit: number;
  offset: number;
  order: SortOrder;
  /** Lower bound on creation time, the tighter of `createdAfter` (exclusive) and `startDate` (inclusive). */
  from?: TimeBound;
  /** Upper bound on creation time, the tighter of `createdBefore` (exclusive) and `endDate` (inclusive). */
  to?: TimeBound;
}

export type SessionSortKey = 'createdAt' | 'updatedAt' | 'messageCount';
export type ToolCallSortKey = 'createdAt' | 'updatedAt';

export interface NormalizedSessionQuery extends NormalizedPage {
  agentId?: string;
  templateId?: string;
  userId?: string;
  sortBy: SessionSortKey;
}

export interface NormalizedMessageQuery extends NormalizedPage {
  agentId?: string;
  role?: string;
  contentType?: string;
}

export interface NormalizedToolCallQuery extends NormalizedPage {
  agentId?: string;
  toolName?: string;
  state?: ToolCallState;
  isError?: boolean;
  hasApproval?: boolean;
  sortBy: ToolCallSortKey;
}

const SESSION_SORT: Record<string, SessionSortKey> = {
  created_at: 'createdAt',
  createdAt: 'createdAt',
  updated_at: 'updatedAt',
  updatedAt: 'updatedAt',
  message_count: 'messageCount',
  messageCount: 'messageCount',
};

const TOOL_CALL_SORT: Record<string, ToolCallSortKey> = {
  created_at: 'createdAt',
  createdAt: 'createdAt',
  updated_at: 'updatedAt',
  updatedAt: 'updatedAt',
};

const MESSAGE_SORT: Record<string, 'createdAt'> = { created_at: 'createdAt', createdAt: 'createdAt' };

/** A date-time without a zone designator (`2026-01-01T10:00:00`), which `Date.parse` would read in local time. */
const ZONELESS_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

/**
 * Epoch milliseconds of an ISO-8601 string, reading a date-time without a
 * zone as UTC, so that answers never depend on the process's time zone.
 * `NaN` when the string is not a date.
 */
export function parseIsoTime(value: string): number {
  return Date.parse(ZONELESS_DATE_TIME.test(value) ? `${value}Z` : value);
}

/** Converts a `Date`, epoch milliseconds or ISO string to epoch milliseconds. */
export function toEpochMs(value: TimeInput, field: string): number {
  const ms =
    value instanceof Date
      ? value.getTime()
      : typeof value === 'number'
        ? value
        : typeof value === 'string'
          ? parseIsoTime(value)
          : Number.NaN;
  if (!Number.isFinite(ms)) {
    throw new QueryError(
      `${field} must be a Date, epoch milliseconds or an ISO-8601 string, got ${describe(value)}`,
    );
  }
  return ms;
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function count(value: unknown, field: string, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  // Beyond 2^53 - 1 an integer is no longer exact, and SQL drivers reject it as out of range.
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new QueryError(`${field} must be a non-negative integer up to 2^53 - 1, got ${describe(value)}`);
  }
  return value;
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new QueryError(`${field} must be a string, got ${describe(value)}`);
  return value;
}

function optionalBoolean(value: unknown, field: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw new QueryError(`${field} must be a boolean, got ${describe(value)}`);
  return value;
}

function tighter(a: TimeBound | undefined, b: TimeBound | undefined, lower: boolean): TimeBound | undefined {
  if (!a) return b;
  if (!b) return a;
  if (a.ms !== b.ms) return (lower ? a.ms > b.ms : a.ms < b.ms) ? a : b;
  return a.inclusive ? b : a;
}

function sortKey<K extends string>(value: unknown, table: Record<string, K>, fallback: K): K {
  if (value === undefined || value === null) return fallback;
  const key = typeof value === 'string' && Object.hasOwn(table, value) ? table[value] : undefined;
  if (key === undefined) {
    throw new QueryError(
      `unknown sortBy ${describe(value)}; expected one of ${Object.keys(table).join(', ')}`,
    );
  }
  return key;
}

function normalizePage(filters: PageFilters): NormalizedPage {
  if (typeof filters !== 'object' || filters === null) throw new QueryError('filters must be an object');
  const order = filters.sortOrder ?? 'desc';
  if (order !== 'asc' && order !== 'desc') {
    throw new QueryError(`unknown sortOrder ${describe(order)}; expected 'asc' or 'desc'`);
  }
  const bound = (value: TimeInput | undefined, field: string, inclusive: boolean): TimeBound | undefined =>
    value === undefined || value === null ? undefined : { ms: toEpochMs(value, field), inclusive };
  return {
    limit: count(filters.limit, 'limit', DEFAULT_QUERY_LIMIT),
    offset: count(filters.offset, 'offset', 0),
    order,
    from: tighter(
      bound(filters.createdAfter, 'createdAfter', false),
      bound(filters.startDate, 'startDate', true),
      true,
    ),
    to: tighter(
      bound(filters.createdBefore, 'createdBefore', false),
      bound(filters.endDate, 'endDate', true),
      false,
    ),
  };
}

export function normalizeSessionFilters(filters: SessionFilters = {}): NormalizedSessionQuery {
  return {
    ...normalizePage(filters),
    agentId: optionalString(filters.agentId, 'agentId'),
    templateId: optionalString(filters.templateId, 'templateId'),
    userId: optionalString(filters.userId, 'userId'),
    sortBy: sortKey(filters.sortBy, SESSION_SORT, 'createdAt'),
  };
}

export function normalizeMessageFilters(filters: MessageFilters = {}): NormalizedMessageQuery {
  sortKey(filters.sortBy, MESSAGE_SORT, 'createdAt');
  return {
    ...normalizePage(filters),
    agentId: optionalString(filters.agentId, 'agentId'),
    role: optionalString(filters.role, 'role'),
    contentType: optionalString(filters.contentType, 'contentType'),
  };
}

export function normalizeToolCallFilters(filters: ToolCallFilters = {}): NormalizedToolCallQuery {
  return {
    ...normalizePage(filters),
    agentId: optionalString(filters.agentId, 'agentId'),
    toolName: optionalString(filters.toolName, 'toolName'),
    state: optionalString(filters.state, 'state') as ToolCallState | undefined,
    isError: optionalBoolean(filters.isError, 'isError'),
    hasApproval: optionalBoolean(filters.hasApproval, 'hasApproval'),
    sortBy: sortKey(filters.sortBy, TOOL_CALL_SORT, 'createdAt'),
  };
}

/** True when `ms` lies within the page's time bounds. */
export function withinTimeBounds(ms: number, page: Pick<NormalizedPage, 'from' | 'to'>): boolean {
  if (page.from && (page.from.inclusive ? ms < page.from.ms : ms <= page.from.ms)) return false;
  if (page.to && (page.to.inclusive ? ms > page.to.ms : ms >= page.to.ms)) return false;
  return true;
}
