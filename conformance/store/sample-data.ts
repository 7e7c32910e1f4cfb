import type {
  AgentChannel,
  AgentInfo,
  CompressionRecord,
  HistoryWindow,
  MediaCacheRecord,
  Message,
  RecoveredFile,
  Snapshot,
  Timeline,
  TodoSnapshot,
  ToolCallRecord,
  ToolCallState,
} from '../../src/types.js';
import { fixtureSample } from './fixture-sample.js';
import type { FixtureAgent } from './fixture-sample-types.js';

/**
 * Builders for the values the cases save, in the shapes the SDK writes (see
 * the fixture sample for real ones). Every builder returns a new object.
 */

/** A fixed, realistic instant (2026-11-22, the fixture's day), so results never depend on the clock. */
export const BASE_MS = 1795361537000;

export function textMessage(role: Message['role'], text: string): Message {
  return { role, content: [{ type: 'text', text }] };
}

export function toolUseMessage(id: string, name: string, input: unknown): Message {
  return {
    role: 'assistant',
    content: [
      { type: 'text', text: `Calling ${name}.` },
      { type: 'tool_use', id, name, input },
    ],
  };
}

export function toolResultMessage(toolUseId: string, content: unknown, isError = false): Message {
  return {
    role: 'user',
    content: [{ type: 'tool_result', tool_use_id: toolUseId, content, is_error: isError }],
  };
}

/** `count` alternating user/assistant text messages, numbered from `from`. */
export function conversation(count: number, from = 0, tag = 'm'): Message[] {
  return Array.from({ length: count }, (_, i) =>
    textMessage((from + i) % 2 === 0 ? 'user' : 'assistant', `${tag}${from + i}`),
  );
}

export function toolCall(id: string, overrides: Partial<ToolCallRecord> = {}): ToolCallRecord {
  const state: ToolCallState = overrides.state ?? 'COMPLETED';
  const createdAt = overrides.createdAt ?? BASE_MS;
  return {
    id,
    name: 'fs_read',
    input: { path: `src/${id}.ts` },
    state,
    approval: { required: false },
    createdAt,
    updatedAt: createdAt + 20,
    auditTrail: [
      { state: 'PENDING', timestamp: createdAt },
      { state, timestamp: createdAt + 20, note: 'execution complete' },
    ],
    ...overrides,
  };
}

export function agentInfo(agentId: string, overrides: Partial<AgentInfo> = {}): AgentInfo {
  return {
    agentId,
    templateId: 'conformance-template',
    createdAt: '2026-11-22T15:32:16.863Z',
    lineage: [],
    configVersion: 'v2.7.0',
    messageCount: 0,
    lastSfpIndex: 0,
    lastBookmark: { seq: 0, timestamp: BASE_MS },
    metadata: { templateVersion: '1.0.0' },
    ...overrides,
  };
}

const CHANNEL_EVENTS: Record<AgentChannel, (seq: number) => Record<string, unknown>> = {
  progress: (seq) => ({ channel: 'progress', type: 'text_chunk', step: 1, delta: `chunk ${seq}` }),
  control: (seq) => ({
    channel: 'control',
    type: 'permission_decided',
    callId: `toolu_${seq}`,
    decision: 'allow',
    decidedBy: 'api',
  }),
  monitor: (seq) => ({ channel: 'monitor', type: 'state_changed', state: seq % 2 ? 'WORKING' : 'READY' }),
};

/** A timeline entry as the SDK appends it: cursor and bookmark outside, the same bookmark inside the event. */
export function timeline(
  seq: number,
  channel: AgentChannel = 'progress',
  extra: Record<string, unknown> = {},
): Timeline {
  const bookmark = { seq, timestamp: BASE_MS + seq };
  return {
    cursor: seq,
    bookmark,
    event: { ...CHANNEL_EVENTS[channel](seq), ...extra, bookmark: { ...bookmark } } as Timeline['event'],
  };
}

export function todoSnapshot(version: number): TodoSnapshot {
  return {
    todos: [
      { id: 't1', title: 'Write the spec', status: 'completed', createdAt: BASE_MS, updatedAt: BASE_MS },
      {
        id: 't2',
        title: 'Review — 审查 ✅',
        status: 'in_progress',
        notes: 'multi\nline "notes"',
        createdAt: BASE_MS,
        updatedAt: BASE_MS + version,
      },
    ],
    version,
    updatedAt: BASE_MS + version,
  };
}

export function historyWindow(id: string, messages: Message[] = conversation(2)): HistoryWindow {
  return {
    id,
    messages,
    events: [timeline(1), timeline(2, 'monitor')],
    stats: { messageCount: messages.length, tokenCount: 120, eventCount: 2 },
    timestamp: BASE_MS,
  };
}

export function compressionRecord(id: string): CompressionRecord {
  return {
    id,
    windowId: `window-${id}`,
    config: {
      model: 'claude-haiku-4-5',
      prompt: 'Summarize the conversation history concisely',
      threshold: 1000,
    },
    summary: `summary of ${id}`,
    ratio: 0.25,
    recoveredFiles: ['/workspace/project/src/app.ts'],
    timestamp: BASE_MS,
  };
}

export function recoveredFile(path: string): RecoveredFile {
  return { path, content: `// ${path}\nexport {};\n`, mtime: 1795361537634.0696, timestamp: BASE_MS };
}

export function mediaRecord(key: string, overrides: Partial<MediaCacheRecord> = {}): MediaCacheRecord {
  return {
    key,
    provider: 'mock',
    mimeType: 'image/png',
    sizeBytes: 70,
    fileId: `file-${key}`,
    createdAt: BASE_MS,
    ...overrides,
  };
}

export function snapshot(id: string, createdAt: string, messages: Message[] = conversation(2)): Snapshot {
  return {
    id,
    messages,
    lastSfpIndex: messages.length - 1,
    lastBookmark: { seq: 10, timestamp: BASE_MS },
    createdAt,
    metadata: { label: id },
  };
}

/** A deep copy of the SDK-written fixture (cases may change what they get). */
export function fixture(): typeof fixtureSample {
  return structuredClone(fixtureSample);
}

/** The fixture agents, deep-copied. */
export function fixtureAgents(): FixtureAgent[] {
  return fixture().agents;
}

/** Lowest-common JSON copy: what any store must give back for `value` (drops `undefined` properties). */
export function asJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Objects within objects (what `nestedValue` builds). */
export interface NestedValue {
  [key: string]: NestedValue;
}

/**
 * A value of exactly `depth` levels of nested objects (`{}` is one level),
 * for the depth-limit cases: `{ level: { level: ... {} } }`.
 */
export function nestedValue(depth: number): NestedValue {
  let value: NestedValue = {};
  for (let level = 1; level < depth; level++) value = { level: value };
  return value;
}
