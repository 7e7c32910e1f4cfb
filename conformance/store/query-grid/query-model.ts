import type {
  AgentInfo,
  Message,
  MessageFilters,
  SessionFilters,
  SessionInfo,
  TimeInput,
  ToolCallFilters,
  ToolCallRecord,
} from '../../../src/types.js';

/**
 * The plain model the query grid's expected answers come from: arrays,
 * `filter` and `sort`, written from the contract (SPEC §3, ARCHITECTURE
 * "Ordering") and sharing no code with any store.
 */

export interface ModelSession {
  agentId: string;
  info: AgentInfo;
  /** Position of this agent's last saveInfo among all saveInfo calls (the updated_at order). */
  savedRank: number;
}

export interface ModelMessage {
  agentId: string;
  position: number;
  /** Which save first wrote this message (saves happen one after another, with the clock moving in between). */
  firstSavedStep: number;
  message: Message;
}

export interface ModelToolCall {
  agentId: string;
  record: ToolCallRecord;
}

export interface ModelData {
  sessions: ModelSession[];
  messages: ModelMessage[];
  toolCalls: ModelToolCall[];
}

type Key = Array<number | string>;

function toMs(value: TimeInput): number {
  if (value instanceof Date) return value.getTime();
  return typeof value === 'number' ? value : Date.parse(value);
}

function inBounds(ms: number, f: MessageFilters | SessionFilters | ToolCallFilters): boolean {
  if (f.startDate !== undefined && ms < toMs(f.startDate)) return false;
  if (f.createdAfter !== undefined && ms <= toMs(f.createdAfter)) return false;
  if (f.endDate !== undefined && ms > toMs(f.endDate)) return false;
  if (f.createdBefore !== undefined && ms >= toMs(f.createdBefore)) return false;
  return true;
}

/** Code-point comparison, written out rather than shared with the stores. */
function compareStrings(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0) as number);
  const y = Array.from(b, (c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  }
  return x.length - y.length;
}

function compareKeys(a: Key, b: Key): number {
  for (let i = 0; i < a.length; i++) {
    const [x, y] = [a[i], b[i]];
    const c = typeof x === 'string' ? compareStrings(x, y as string) : (x as number) - (y as number);
    if (c !== 0) return c;
  }
  return 0;
}

/** Sorts by key (tie-breakers are part of the key and follow the same direction), then offset and limit. */
function orderAndPage<T>(
  rows: T[],
  key: (row: T) => Key,
  f: { sortOrder?: string; limit?: number; offset?: number },
): T[] {
  const direction = f.sortOrder === 'asc' ? 1 : -1;
  const sorted = [...rows].sort((a, b) => direction * compareKeys(key(a), key(b)));
  const offset = f.offset ?? 0;
  return sorted.slice(offset, offset + (f.limit ?? 100));
}

export function expectedSessions(data: ModelData, f: SessionFilters): SessionInfo[] {
  const rows = data.sessions.filter((s) => {
    const userId = (s.info.metadata as { userId?: unknown } | undefined)?.userId;
    if (f.agentId !== undefined && s.agentId !== f.agentId) return false;
    if (f.templateId !== undefined && s.info.templateId !== f.templateId) return false;
    if (f.userId !== undefined && userId !== f.userId) return false;
    return inBounds(Date.parse(s.info.createdAt), f);
  });
  const sortValue = (s: ModelSession): number =>
    f.sortBy === 'updated_at'
      ? s.savedRank
      : f.sortBy === 'message_count'
        ? s.info.messageCount
        : Date.parse(s.info.createdAt);
  return orderAndPage(rows, (s) => [sortValue(s), s.agentId], f).map((s) => {
    const session: SessionInfo = {
      agentId: s.agentId,
      templateId: s.info.templateId,
      createdAt: s.info.createdAt,
      messageCount: s.info.messageCount,
      lastSfpIndex: s.info.lastSfpIndex,
    };
    if (s.info.breakpoint !== undefined) session.breakpoint = s.info.breakpoint;
    return session;
  });
}

export function expectedMessages(data: ModelData, f: MessageFilters): Message[] {
  const rows = data.messages.filter((m) => {
    if (f.agentId !== undefined && m.agentId !== f.agentId) return false;
    if (f.role !== undefined && m.message.role !== f.role) return false;
    if (f.contentType !== undefined && !m.message.content.some((block) => block.type === f.contentType))
      return false;
    // Message times are the store's clock; the grid only uses bounds far from "now" on either side.
    return inBounds(Date.now(), f);
  });
  return orderAndPage(rows, (m) => [m.firstSavedStep, m.agentId, m.position], f).map((m) => m.message);
}

export function expectedToolCalls(data: ModelData, f: ToolCallFilters): ToolCallRecord[] {
  const rows = data.toolCalls.filter(({ agentId, record }) => {
    if (f.agentId !== undefined && agentId !== f.agentId) return false;
    if (f.toolName !== undefined && record.name !== f.toolName) return false;
    if (f.state !== undefined && record.state !== f.state) return false;
    if (f.isError !== undefined && (record.isError === true) !== f.isError) return false;
    if (f.hasApproval !== undefined && (record.approval.required === true) !== f.hasApproval) return false;
    return inBounds(record.createdAt, f);
  });
  const sortValue = (r: ToolCallRecord) => (f.sortBy === 'updated_at' ? r.updatedAt : r.createdAt);
  return orderAndPage(rows, (t) => [sortValue(t.record), t.agentId, t.record.id], f).map((t) => t.record);
}
