import { fixtureSample } from '../conformance/store/fixture-sample.js';
import type { FixtureAgent } from '../conformance/store/fixture-sample-types.js';
import type {
  AgentChannel,
  AgentInfo,
  Message,
  Timeline,
  TodoSnapshot,
  ToolCallRecord,
  ToolCallState,
} from '../src/types.js';

/**
 * Data for the workloads, shaped like what the KODE SDK really writes: every
 * value is a copy of a record from the SDK-written fixture
 * (`conformance/fixture-sample.ts`, generated from
 * `test/fixtures/kode-jsonstore-v2.7.5`) with its text grown to the sizes
 * of a working agent (user turns ~500 bytes, assistant turns ~1.5 KB with a
 * `tool_use` block) and its ids, sequence numbers and times renumbered.
 * Everything is deterministic: two runs write the same bytes.
 */

function fixtureAgent(index: number): FixtureAgent {
  const agent = fixtureSample.agents[index];
  if (!agent)
    throw new Error(`the fixture sample no longer holds agent #${index}, which the benchmark copies`);
  return agent;
}

/** Two agents that asked for approvals (events on all three channels) and one that kept todos. */
const approvalAgent = fixtureAgent(0);
const secondApprovalAgent = fixtureAgent(1);
const todoAgent = fixtureAgent(3);

/** The fixture's day: times in the generated data start here, so no run depends on the clock. */
export const BASE_MS = 1795361537000;

/** Tool names the fixture's agents call, in rough proportion to how often they call them. */
export const TOOL_NAMES = ['fs_read', 'fs_read', 'fs_write', 'fs_edit', 'probe'] as const;

/** Template ids of a fleet: the fixture's templates. */
export const TEMPLATE_IDS = [
  'fx-assistant',
  'fx-approval',
  'fx-todo',
  'fx-media',
  'fx-helper',
  'fx-reviewer',
  'fx-planner',
  'fx-researcher',
  'fx-coder',
  'fx-tester',
] as const;

/** Prose from the fixture's long conversation, repeated to reach a size. */
const PROSE =
  'Paragraph {n}: the service reads its settings from config files, validates them and starts workers. ' +
  'Now the config loader — 审查 ✅ — keeps retries bounded and logs every rejected key. ';

function prose(n: number, bytes: number): string {
  const unit = PROSE.replaceAll('{n}', String(n));
  let text = '';
  while (Buffer.byteLength(text) < bytes) text += unit;
  // Trim to the size on a code-point boundary.
  const chars = [...text];
  while (Buffer.byteLength(chars.join('')) > bytes) chars.pop();
  return chars.join('');
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

/** A user turn of ~500 bytes of JSON: one text block, as the SDK saves a typed prompt. */
export function userMessage(n: number): Message {
  return { role: 'user', content: [{ type: 'text', text: prose(n, 460) }] };
}

/**
 * An assistant turn of ~1.5 KB of JSON: text and a `tool_use` block whose
 * input carries file content, as in the fixture's `fs_write` turns.
 */
export function assistantMessage(n: number): Message {
  const name = TOOL_NAMES[n % TOOL_NAMES.length]!;
  return {
    role: 'assistant',
    content: [
      { type: 'text', text: prose(n, 420) },
      {
        type: 'tool_use',
        id: toolCallId(n),
        name,
        input: { path: `src/module-${n % 97}.ts`, content: prose(n + 1, 900) },
      },
    ],
  };
}

/** The `count` messages of a conversation, user and assistant turns alternating. */
export function conversation(count: number, from = 0): Message[] {
  return Array.from({ length: count }, (_, i) =>
    (from + i) % 2 === 0 ? userMessage(from + i) : assistantMessage(from + i),
  );
}

/** A tool-call id in the SDK's format (`toolu_...`), unique per `n`. */
export function toolCallId(n: number): string {
  return `toolu_bench_${n.toString(16).padStart(10, '0')}`;
}

const FIXTURE_TOOL_CALL = approvalAgent.toolCalls[0]!;

/**
 * The state of the `n`-th tool call: mostly completed, some failed, a few
 * denied. The period (23) is prime to the tool names' (5), so every tool has
 * calls in every state.
 */
export function toolCallState(n: number): ToolCallState {
  const bucket = n % 23;
  if (bucket < 2) return 'FAILED';
  if (bucket === 2) return 'DENIED';
  return 'COMPLETED';
}

/**
 * A tool-call record as the SDK keeps it (approval, audit trail, result,
 * timings), copied from the fixture's approved `fs_write` record.
 * `state` lets a workload show a call before and after it completed.
 */
export function toolCallRecord(n: number, state: ToolCallState = toolCallState(n)): ToolCallRecord {
  const record = clone(FIXTURE_TOOL_CALL);
  const createdAt = BASE_MS + n * 1000;
  record.id = toolCallId(n);
  record.name = TOOL_NAMES[n % TOOL_NAMES.length]!;
  record.input = { path: `src/module-${n % 97}.ts`, content: prose(n, 120) };
  record.state = state;
  record.createdAt = createdAt;
  record.updatedAt = createdAt + 60;
  record.auditTrail = record.auditTrail.map((entry, i) => ({ ...entry, timestamp: createdAt + i * 15 }));
  if (state === 'PENDING') {
    record.auditTrail = record.auditTrail.slice(0, 1);
    delete record.result;
    delete record.completedAt;
    delete record.durationMs;
  } else if (state === 'FAILED' || state === 'DENIED') {
    record.isError = true;
    record.error = state === 'DENIED' ? 'Tool denied by policy' : 'ENOENT: no such file or directory';
    delete record.result;
  }
  return record;
}

/** The fixture's agent info, renumbered for `agentId`. */
export function agentInfo(
  agentId: string,
  options: { templateId?: string; messageCount?: number; createdAtMs?: number; seq?: number } = {},
): AgentInfo {
  const info = clone(approvalAgent.info);
  const createdAt = new Date(options.createdAtMs ?? BASE_MS).toISOString();
  info.agentId = agentId;
  info.templateId = options.templateId ?? info.templateId;
  info.createdAt = createdAt;
  info.messageCount = options.messageCount ?? 0;
  info.lastSfpIndex = Math.max(0, (options.messageCount ?? 0) - 1);
  info.lastBookmark = { seq: options.seq ?? 0, timestamp: BASE_MS + (options.seq ?? 0) };
  if (info.metadata) {
    info.metadata.agentId = agentId;
    info.metadata.templateId = info.templateId;
    info.metadata.createdAt = createdAt;
  }
  return info;
}

/** The fixture's todo list. */
export function todoSnapshot(): TodoSnapshot {
  if (!todoAgent.todos) throw new Error('the fixture sample no longer holds a todo list');
  return clone(todoAgent.todos);
}

/** Every event the fixture's approval agents emitted, on all three channels, in order. */
const FIXTURE_EVENTS: readonly Timeline[] = [...approvalAgent.events, ...secondApprovalAgent.events];

/** Share of each channel in the fixture's streams (progress, control, monitor all present). */
export function fixtureChannels(): Record<AgentChannel, number> {
  const counts: Record<AgentChannel, number> = { progress: 0, control: 0, monitor: 0 };
  for (const entry of FIXTURE_EVENTS) counts[entry.event.channel]++;
  return counts;
}

/**
 * The `n`-th event of a stream: the fixture's events in a loop, with the
 * cursor, `bookmark.seq` and times renumbered so that seqs grow with `n`
 * (the reads "since the middle" then split the stream in half).
 */
export function timeline(n: number): Timeline {
  const template = FIXTURE_EVENTS[n % FIXTURE_EVENTS.length]!;
  const bookmark = { seq: n, timestamp: BASE_MS + n };
  const event = { ...template.event, bookmark } as Timeline['event'];
  return { cursor: n, bookmark, event };
}

/** Text of each length asked for, made once: a million events must not each build their own. */
const chunkTexts = new Map<number, string>();

/**
 * The `n`-th event of a stream of streamed text chunks, each `bytes` of JSON
 * (to within a few bytes): the kind of event a long answer emits by the
 * thousand, and the size issue 21's memory target is stated for.
 */
export function textChunkTimeline(n: number, bytes: number): Timeline {
  const bookmark = { seq: n, timestamp: BASE_MS + n };
  const shell = {
    cursor: n,
    bookmark,
    event: { channel: 'progress', type: 'text_chunk', step: n, delta: '', bookmark },
  };
  const length = Math.max(0, bytes - JSON.stringify(shell).length);
  let delta = chunkTexts.get(length);
  if (delta === undefined) {
    delta = prose(0, length);
    chunkTexts.set(length, delta);
  }
  return { ...shell, event: { ...shell.event, delta } } as unknown as Timeline;
}

/** Events `from` .. `from + count - 1`. */
export function timelines(count: number, from = 0): Timeline[] {
  return Array.from({ length: count }, (_, i) => timeline(from + i));
}

/**
 * The value of KV record `n`: the kind of object an agent keeps per user
 * (a status, a score, tags and a short text), ~250 bytes of JSON.
 */
export function kvValue(n: number): {
  userId: string;
  status: 'active' | 'idle' | 'archived';
  score: number;
  tags: string[];
  summary: string;
  updatedAtMs: number;
} {
  return {
    userId: `user-${n % 997}`,
    status: n % 3 === 0 ? 'active' : n % 3 === 1 ? 'idle' : 'archived',
    score: (n * 7919) % 1000,
    tags: [TOOL_NAMES[n % TOOL_NAMES.length]!, TEMPLATE_IDS[n % TEMPLATE_IDS.length]!],
    summary: prose(n, 120),
    updatedAtMs: BASE_MS + n,
  };
}
