import type { AgentInfo, Message, SessionInfo, ToolCallRecord } from '../types.js';
import type { MessageFields, ToolCallRowFields } from './agent-backend.js';
import { parseIsoTime } from './query-filters.js';

/**
 * The fields every backend extracts from stored JSON into indexed columns (or
 * document fields), defined once so that all backends filter on exactly the
 * same values. The JSON itself is always stored whole and returned as saved.
 */

/** Distinct block types of a message, in order of first appearance. */
export function messageContentTypes(message: Message): string[] {
  const types: string[] = [];
  const content = Array.isArray(message?.content) ? message.content : [];
  for (const block of content) {
    const type = (block as { type?: unknown } | null)?.type;
    if (typeof type === 'string' && !types.includes(type)) types.push(type);
  }
  return types;
}

/** The fields of a message a backend stores beside its text; `message` may be anything the caller saved. */
export function messageFields(message: Message | undefined): MessageFields {
  const role = (message as { role?: unknown } | null | undefined)?.role;
  return {
    role: typeof role === 'string' ? role : '',
    contentTypes: messageContentTypes(message as Message),
  };
}

export interface ToolCallFields {
  name: string;
  state: string;
  /** `record.isError === true`. */
  isError: boolean;
  /** `record.approval.required === true`. */
  hasApproval: boolean;
  createdAt: number;
  updatedAt: number;
}

function finiteOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

export function toolCallFields(record: ToolCallRecord): ToolCallFields {
  const createdAt = finiteOr(record.createdAt, 0);
  return {
    name: typeof record.name === 'string' ? record.name : '',
    state: typeof record.state === 'string' ? record.state : '',
    isError: record.isError === true,
    hasApproval: record.approval?.required === true,
    createdAt,
    updatedAt: finiteOr(record.updatedAt, createdAt),
  };
}

/** The fields of a tool call a backend stores beside its text (the caller checked it is an object). */
export function toolCallRowFields(record: ToolCallRecord): ToolCallRowFields {
  return { id: String(record.id), ...toolCallFields(record) };
}

export interface SessionFields {
  templateId: string;
  /** `info.createdAt` in epoch ms (a zone-less date-time read as UTC), or 0 when absent or unreadable. */
  createdAtMs: number;
  /** `info.metadata.userId` when it is a string. */
  userId: string | null;
  messageCount: number;
  /**
   * The session itself as JSON text: `toSessionInfo` of the info without
   * `agentId`. Stored beside the info so that a `querySessions` page reads
   * this small object instead of parsing every agent's whole configuration
   * (the SDK's info holds it, a kilobyte or more).
   */
  sessionJson: string;
}

export function sessionFields(info: Partial<AgentInfo>): SessionFields {
  const parsed = typeof info.createdAt === 'string' ? parseIsoTime(info.createdAt) : Number.NaN;
  const userId = (info.metadata as { userId?: unknown } | undefined)?.userId;
  return {
    templateId: typeof info.templateId === 'string' ? info.templateId : '',
    createdAtMs: Number.isFinite(parsed) ? parsed : 0,
    userId: typeof userId === 'string' ? userId : null,
    messageCount: finiteOr(info.messageCount, 0),
    // Read back through `toSessionInfo`, which gives the same session from
    // this text as from the whole info's: each field is serialised under the
    // same key (a `toJSON(key)` sees the same key), and what JSON drops or
    // turns into null falls back to the same default either way.
    sessionJson: JSON.stringify(sessionOf(info)),
  };
}

/** The session of an info, without its agent id: what `toSessionInfo` reads (optional fields stay absent). */
function sessionOf(info: Partial<AgentInfo>): Omit<SessionInfo, 'agentId'> {
  const session: Omit<SessionInfo, 'agentId'> = {
    templateId: info.templateId ?? '',
    createdAt: info.createdAt ?? '',
    messageCount: info.messageCount ?? 0,
    lastSfpIndex: info.lastSfpIndex ?? 0,
  };
  if (info.breakpoint !== undefined) session.breakpoint = info.breakpoint;
  return session;
}

/**
 * The `SessionInfo` the SDK expects, built from a saved `AgentInfo`, or from
 * the `sessionJson` of `sessionFields` (the same fields under the same names).
 */
export function toSessionInfo(agentId: string, info: Partial<AgentInfo>): SessionInfo {
  return { agentId, ...sessionOf(info) };
}

/**
 * Length of the common prefix of two lists of serialised messages (or tool
 * records). A save writes only what follows it, which is what makes the SDK's
 * "save the whole conversation after every step" cost O(new messages).
 */
export function commonPrefixLength(stored: readonly string[], next: readonly string[]): number {
  const n = Math.min(stored.length, next.length);
  let i = 0;
  while (i < n && stored[i] === next[i]) i++;
  return i;
}

/** One item of a stored list's tail: its serialised text and when it was first saved (epoch ms). */
export interface SavedTailItem {
  json: string;
  savedAt: number;
}

/**
 * The first-saved time of each item of a rewritten tail (`newTail`, the items
 * past the common prefix). An item whose text equals one of the old tail's
 * keeps that item's time, so a message inserted in the middle, or a summary
 * replacing the head, does not re-stamp the messages after it. Equal texts
 * pair occurrence by occurrence, in order: the k-th `X` of the new tail takes
 * the time of the k-th `X` of the old tail. Unpaired items get `now`.
 * O(old tail + new tail).
 */
export function pairFirstSavedTimes(
  oldTail: readonly SavedTailItem[],
  newTail: readonly string[],
  now: number,
): number[] {
  if (oldTail.length === 0) return newTail.map(() => now);
  // Per text, the old times in order; `next` is the next occurrence to hand out.
  const byText = new Map<string, { times: number[]; next: number }>();
  for (const { json, savedAt } of oldTail) {
    const entry = byText.get(json);
    if (entry) entry.times.push(savedAt);
    else byText.set(json, { times: [savedAt], next: 0 });
  }
  return newTail.map((json) => {
    const entry = byText.get(json);
    if (!entry || entry.next >= entry.times.length) return now;
    return entry.times[entry.next++] as number;
  });
}
