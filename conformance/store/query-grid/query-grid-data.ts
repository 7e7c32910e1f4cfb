import type {
  AgentInfo,
  ContentBlock,
  ExtendedStore,
  Message,
  ToolCallRecord,
  ToolCallState,
} from '../../../src/types.js';
import { waitPast } from '../../runner/assertions.js';
import type { ModelData } from './query-model.js';

/**
 * The query grid's data set: several agents, templates, users, roles,
 * content types, tool names, states, errors, approvals and times with ties.
 * Its shape is fixed (a seeded generator), so case ids and answers are stable;
 * its ids and times are unique per run, so it never meets other data in a
 * shared database.
 */

/** A small deterministic generator (mulberry32), so the data set is the same on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const GRID_AGENTS = 8;
export const GRID_TEMPLATES = 3;
export const GRID_USERS = 3;
export const TOOL_NAMES = ['fs_read', 'fs_write', 'bash_run', 'probe'] as const;
export const TOOL_STATES: ToolCallState[] = ['COMPLETED', 'FAILED', 'DENIED', 'APPROVAL_REQUIRED', 'SEALED'];
export const CONTENT_TYPES = ['text', 'tool_use', 'tool_result', 'image', 'reasoning'] as const;
const DAY_MS = 86_400_000;

/** The names a grid case refers to, resolved against one run's scope. */
export interface GridScope {
  /** Prefix of every agent id of the run. */
  prefix: string;
  /** Start of the run's time window (a far-future day). */
  windowStart: number;
  /** A content-block type present in every grid message and nowhere else. */
  marker: string;
  agent(i: number): string;
  template(i: number): string;
  user(i: number): string;
  /** An instant inside the window, `slot` seconds after its start. */
  at(slot: number): number;
}

export function gridScope(token: string, dayOffset: number): GridScope {
  const prefix = `qg-${token}`;
  const windowStart = Date.UTC(2400, 0, 1) + dayOffset * DAY_MS;
  return {
    prefix,
    windowStart,
    marker: `${prefix}-marker`,
    // Same-length lowercase ASCII ids: their order is the same under every collation.
    agent: (i) => `${prefix}-agent-${String.fromCharCode(97 + i)}`,
    template: (i) => `${prefix}-template-${i}`,
    user: (i) => `${prefix}-user-${i}`,
    at: (slot) => windowStart + slot * 1000,
  };
}

function block(type: (typeof CONTENT_TYPES)[number], n: number): ContentBlock {
  switch (type) {
    case 'text':
      return { type: 'text', text: `text ${n}` };
    case 'tool_use':
      return { type: 'tool_use', id: `toolu_${n}`, name: 'probe', input: { n } };
    case 'tool_result':
      return {
        type: 'tool_result',
        tool_use_id: `toolu_${n}`,
        content: { ok: n % 2 === 0 },
        is_error: n % 5 === 0,
      };
    case 'image':
      return { type: 'image', file_id: `file-${n}`, mime_type: 'image/png' };
    case 'reasoning':
      return { type: 'reasoning', reasoning: `thinking ${n}` };
  }
}

/** The grid's data, and a function that writes it into a store in a fixed order of saves. */
export function gridData(scope: GridScope) {
  const random = seeded(20261122);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;

  const infos: AgentInfo[] = [];
  const conversations: Message[][] = [];
  const toolCalls: ToolCallRecord[][] = [];
  for (let a = 0; a < GRID_AGENTS; a++) {
    const agentId = scope.agent(a);
    const metadata: Record<string, unknown> = { slot: a };
    if (a % 4 !== 3) metadata.userId = scope.user(a % GRID_USERS);
    const info: AgentInfo = {
      agentId,
      templateId: scope.template(a % GRID_TEMPLATES),
      // Slots repeat, so several agents share a createdAt (ties broken by agent id).
      createdAt: new Date(scope.at(pick([0, 1, 1, 2, 3, 3, 3, 5]))).toISOString(),
      lineage: [],
      configVersion: 'v2.7.0',
      messageCount: pick([0, 3, 3, 7, 12]),
      lastSfpIndex: a,
      metadata,
    };
    if (a % 3 === 0) info.breakpoint = 'READY';
    infos.push(info);

    const messages: Message[] = [];
    const count = 3 + Math.floor(random() * 5);
    for (let m = 0; m < count; m++) {
      const role = m === 0 && a % 2 === 0 ? 'system' : m % 2 === 0 ? 'user' : 'assistant';
      const content: ContentBlock[] = [block(pick(CONTENT_TYPES), a * 100 + m)];
      if (random() < 0.4) content.push(block(pick(CONTENT_TYPES), a * 100 + m + 50));
      content.push({ type: scope.marker, n: m } as unknown as ContentBlock);
      messages.push({ role, content });
    }
    conversations.push(messages);

    const records: ToolCallRecord[] = [];
    const recordCount = a === GRID_AGENTS - 1 ? 0 : 2 + Math.floor(random() * 5);
    for (let r = 0; r < recordCount; r++) {
      const state = pick(TOOL_STATES);
      const createdAt = scope.at(pick([0, 1, 2, 2, 4, 4, 6]));
      const record: ToolCallRecord = {
        // Ids repeat across agents (toolu_0 in every agent), as the SDK's fallback ids do.
        id: `toolu_${r}`,
        name: pick(TOOL_NAMES),
        input: { r },
        state,
        approval:
          state === 'DENIED' || state === 'APPROVAL_REQUIRED' || random() < 0.2
            ? { required: true }
            : { required: false },
        createdAt,
        updatedAt: createdAt + pick([0, 500, 3000]),
        auditTrail: [{ state, timestamp: createdAt }],
      };
      if (state === 'FAILED' || random() < 0.1) {
        record.isError = true;
        record.error = 'boom';
      }
      records.push(record);
    }
    toolCalls.push(records);
  }

  /** Writes the data set, one save at a time with the clock moving in between, and returns the model of what was written. */
  async function write(store: ExtendedStore): Promise<ModelData> {
    const model: ModelData = { sessions: [], messages: [], toolCalls: [] };
    let step = 0;
    const tick = () => waitPast(Date.now() + 1);
    // Messages in two rounds (half, then whole) so that first-saved times interleave across agents.
    for (const half of [true, false]) {
      for (let a = 0; a < GRID_AGENTS; a++) {
        const list = conversations[a] as Message[];
        const saved = half ? list.slice(0, Math.ceil(list.length / 2)) : list;
        await store.saveMessages(scope.agent(a), saved);
        step++;
        saved.forEach((message, position) => {
          const known = model.messages.some((m) => m.agentId === scope.agent(a) && m.position === position);
          if (!known)
            model.messages.push({ agentId: scope.agent(a), position, firstSavedStep: step, message });
        });
        await tick();
      }
    }
    for (let a = 0; a < GRID_AGENTS; a++) {
      await store.saveToolCallRecords(scope.agent(a), toolCalls[a] as ToolCallRecord[]);
      for (const record of toolCalls[a] as ToolCallRecord[])
        model.toolCalls.push({ agentId: scope.agent(a), record });
    }
    // Infos in a scrambled order, two of them saved twice, so updated_at differs from created_at order.
    const order = [5, 2, 7, 0, 3, 6, 1, 4, 2, 0];
    let rank = 0;
    for (const a of order) {
      await store.saveInfo(scope.agent(a), infos[a] as AgentInfo);
      rank++;
      const existing = model.sessions.find((s) => s.agentId === scope.agent(a));
      if (existing) existing.savedRank = rank;
      else model.sessions.push({ agentId: scope.agent(a), info: infos[a] as AgentInfo, savedRank: rank });
      await tick();
    }
    return model;
  }

  return { infos, conversations, toolCalls, write };
}
